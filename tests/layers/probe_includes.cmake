# probe_includes.cmake: proves that the build enforces the layers. Each probe is a one-line
# C file that includes one header, compiled with exactly the include directories a
# source of the given library gets (its own public and internal headers, the public
# headers of the libraries below: <build>/tests/layers/<lib>.includes, written at
# generate time from the target). A header of a higher layer, or another library's
# internal header, must fail with "not found" for that very header; the headers a
# library may use must compile, so the probes themselves are known to work.
#
#   cmake -DCC=<C compiler> -DDIR=<build>/tests/layers -P probe_includes.cmake

cmake_minimum_required(VERSION 3.24)

# library | headers it may include | headers it must not find (comma-separated)
set(PROBES
  "rf_runtime|rf_base.h,tensor.h,cmd.h,transfer.h,context_internal.h,vkcheck.h|gemm.h,elementwise.h,launch.h,gemm_internal.h,clip.h,decompose.h,clip_internal.h,lhost.h,ltensor.h"
  "rf_ops|tensor.h,cmd.h,gemm.h,elementwise.h,gemm_internal.h,launch.h,shader_table.h|context_internal.h,cmd_internal.h,vkcheck.h,clip.h,tokenizer.h,clip_internal.h,lhost.h"
  "rf_model|tensor.h,gemm.h,clip.h,decompose.h,clip_internal.h,tokenizer_internal.h|context_internal.h,pipeline_internal.h,gemm_internal.h,launch.h,rowops.h,lhost.h,ltensor.h"
  "rf_lua|tensor.h,profile.h,gemm.h,clip.h,ltensor.h,paths.h|context_internal.h,memory_internal.h,gemm_internal.h,launch.h,clip_internal.h,tokenizer_internal.h,fold.h")

set(probe_dir ${DIR}/probes)
file(REMOVE_RECURSE ${probe_dir})
file(MAKE_DIRECTORY ${probe_dir})
set(failures 0)
set(n 0)

# Compiles `#include "<header>"` in <lib>'s context; sets rc and log in the caller.
function(probe lib header)
  file(READ ${DIR}/${lib}.includes dirs)
  set(flags "")
  foreach(d IN LISTS dirs)
    list(APPEND flags -I${d})
  endforeach()
  string(MAKE_C_IDENTIFIER "${lib}_${header}" name)
  set(src ${probe_dir}/${name}.c)
  file(WRITE ${src} "#include \"${header}\"\n")
  execute_process(COMMAND ${CC} -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L
                  -fsyntax-only ${flags} ${src}
                  RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(rc ${code} PARENT_SCOPE)
  set(log "${out}${err}" PARENT_SCOPE)
  set(src ${src} PARENT_SCOPE)
endfunction()

foreach(row IN LISTS PROBES)
  string(REPLACE "|" ";" parts "${row}")
  list(GET parts 0 lib)
  list(GET parts 1 allowed)
  list(GET parts 2 forbidden)
  string(REPLACE "," ";" allowed "${allowed}")
  string(REPLACE "," ";" forbidden "${forbidden}")
  if(NOT EXISTS ${DIR}/${lib}.includes)
    message(FATAL_ERROR "${DIR}/${lib}.includes is missing: configure the build first")
  endif()
  foreach(h IN LISTS allowed)
    probe(${lib} ${h})
    math(EXPR n "${n} + 1")
    if(NOT rc EQUAL 0)
      message(SEND_ERROR "${lib}: including ${h} should compile but fails:\n${log}")
      math(EXPR failures "${failures} + 1")
    endif()
  endforeach()
  foreach(h IN LISTS forbidden)
    probe(${lib} ${h})
    math(EXPR n "${n} + 1")
    # The failure must be this header not being found (gcc, clang), not any other error.
    string(REPLACE "." "\\." hre "${h}")
    get_filename_component(sname ${src} NAME)
    if(rc EQUAL 0)
      message(SEND_ERROR "${lib}: including ${h} compiles, but ${h} belongs to a higher layer "
                         "or to another library's internals")
      math(EXPR failures "${failures} + 1")
    elseif(NOT log MATCHES "${sname}:1:[0-9]+: fatal error: (${hre}: No such file|'${hre}' file not found)")
      message(SEND_ERROR "${lib}: including ${h} fails, but not because ${h} is out of reach:\n${log}")
      math(EXPR failures "${failures} + 1")
    endif()
  endforeach()
endforeach()

if(failures GREATER 0)
  message(FATAL_ERROR "${failures} of ${n} layer probes failed")
endif()
message(STATUS "${n} layer probes: allowed headers compile, upward and internal ones are not found")
