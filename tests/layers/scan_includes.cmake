# scan_includes.cmake: every #include "..." of every C file, checked against the layers.
# The compiler only sees the files it builds and only by name; this also catches paths
# ("../compute/model/clip.h", "internal/cmd_internal.h"), public headers that include
# internal ones, headers no build compiles, and files outside the known folders.
#
#   cmake -DROOT=<source dir> [-DEXCEPTIONS=file:header,...] -P scan_includes.cmake
#
# A file of a layer may include its own headers (public or internal) and the public
# headers of the layers below it. Names are unique across the folders, so a name says
# where a header lives.

cmake_minimum_required(VERSION 3.24)
string(REPLACE "," ";" EXCEPTIONS "${EXCEPTIONS}")

set(LAYERS runtime ops model lua tests)   # bottom to top
set(runtime_public runtime)
set(runtime_internal runtime/internal)
set(ops_public compute/ops)
set(ops_internal compute/ops/internal)
set(model_public compute/model)
set(model_internal compute/model/internal)
set(lua_public lua)
set(lua_internal "")
set(tests_public tests tests/ref tests/fuzz)
set(tests_internal "")
# third_party/ (stb's one translation unit) includes no refract header and is not scanned.

# The layer and kind (public/internal) of folder `dir`, or "" if none.
function(folder_layer dir out_layer out_kind)
  foreach(l IN LISTS LAYERS)
    foreach(k public internal)
      if(dir IN_LIST ${l}_${k})
        set(${out_layer} ${l} PARENT_SCOPE)
        set(${out_kind} ${k} PARENT_SCOPE)
        return()
      endif()
    endforeach()
  endforeach()
  set(${out_layer} "" PARENT_SCOPE)
  set(${out_kind} "" PARENT_SCOPE)
endfunction()

function(layer_index l out)
  list(FIND LAYERS ${l} i)
  set(${out} ${i} PARENT_SCOPE)
endfunction()

# Checks that `file` (relative path) may include `name`; appends a message to the
# caller's `problems` otherwise. Headers are looked up in HEADER_<name> = "layer|kind".
function(check_include file name)
  get_filename_component(dir ${file} DIRECTORY)
  folder_layer("${dir}" l k)
  if("${file}:${name}" IN_LIST EXCEPTIONS)
    return()
  endif()
  if(name MATCHES "/")
    if(NOT (l STREQUAL "tests" AND name MATCHES "^ref/[^/]+$"))
      set(problems ${problems} "${file}: #include \"${name}\" reaches a header by a path: include it by name, through the library's include directories" PARENT_SCOPE)
    endif()
    return()
  endif()
  if(NOT DEFINED HEADER_${name})
    if(NOT (l STREQUAL "ops" AND name MATCHES "\\.inc$"))   # the generated shader table rows
      set(problems ${problems} "${file}: #include \"${name}\" names no header of refract" PARENT_SCOPE)
    endif()
    return()
  endif()
  string(REPLACE "|" ";" where "${HEADER_${name}}")
  list(GET where 0 hl)
  list(GET where 1 hk)
  layer_index(${l} li)
  layer_index(${hl} hi)
  if(hi GREATER li)
    set(problems ${problems} "${file} (${l}) includes ${name} of ${hl}, a higher layer" PARENT_SCOPE)
  elseif(hi LESS li AND hk STREQUAL "internal")
    set(problems ${problems} "${file} (${l}) includes ${name}, internal to ${hl}" PARENT_SCOPE)
  elseif(hi EQUAL li AND k STREQUAL "public" AND hk STREQUAL "internal" AND file MATCHES "\\.h$")
    set(problems ${problems} "${file} is a public header of ${l} but includes the internal ${name}, which its users cannot reach" PARENT_SCOPE)
  endif()
endfunction()

# Registers every header of the layer folders as HEADER_<name> = "layer|kind"; a name in
# two folders, or an *_internal.h outside an internal folder, is a problem of its own.
macro(register_headers)
  foreach(l IN LISTS LAYERS)
    foreach(k public internal)
      foreach(dir IN LISTS ${l}_${k})
        file(GLOB headers RELATIVE ${ROOT}/${dir} ${ROOT}/${dir}/*.h)
        foreach(h IN LISTS headers)
          if(DEFINED HEADER_${h})
            list(APPEND problems "${h} is in two folders (${HEADER_${h}} and ${l}|${k}), but header names must be unique")
          endif()
          if(h MATCHES "_internal\\.h$" AND k STREQUAL "public")
            list(APPEND problems "${dir}/${h} is internal by name but sits in a public folder: move it to ${l}'s internal folder")
          endif()
          set(HEADER_${h} "${l}|${k}")
        endforeach()
      endforeach()
    endforeach()
  endforeach()
endmacro()

# The checker on cases with known answers first, so that a scan which finds nothing
# means the sources are clean and not that the checker is broken.
function(self_test)
  set(HEADER_clip.h "model|public")
  set(HEADER_clip_internal.h "model|internal")
  set(HEADER_gemm.h "ops|public")
  set(HEADER_context_internal.h "runtime|internal")
  set(HEADER_tensor.h "runtime|public")
  set(EXCEPTIONS "lua/excused.c:clip_internal.h")
  set(cases
    "runtime/x.c|clip.h|1" "compute/ops/x.c|clip.h|1" "lua/x.c|clip_internal.h|1"
    "compute/model/x.c|context_internal.h|1" "runtime/x.h|context_internal.h|1"
    "lua/x.c|../compute/model/clip.h|1" "lua/x.c|internal/context_internal.h|1"
    "lua/x.c|nowhere.h|1" "compute/model/x.c|gemm.h|0" "compute/model/x.c|clip_internal.h|0"
    "runtime/x.c|context_internal.h|0" "tests/x.c|ref/ref_ops.h|0" "lua/excused.c|clip_internal.h|0")
  foreach(c IN LISTS cases)
    string(REPLACE "|" ";" c "${c}")
    list(GET c 0 file)
    list(GET c 1 name)
    list(GET c 2 want)
    set(problems "")
    check_include(${file} ${name})
    list(LENGTH problems got)
    if(NOT got EQUAL want)
      message(FATAL_ERROR "scanner self-test: ${file} including ${name} gave ${got} problem(s), expected ${want}")
    endif()
  endforeach()
endfunction()

self_test()
set(problems "")
register_headers()

file(GLOB_RECURSE sources RELATIVE ${ROOT} ${ROOT}/runtime/*.[ch] ${ROOT}/compute/*.[ch]
     ${ROOT}/lua/*.[ch] ${ROOT}/tests/*.[ch])
set(checked 0)
foreach(file IN LISTS sources)
  get_filename_component(dir ${file} DIRECTORY)
  folder_layer("${dir}" l k)
  if(l STREQUAL "")
    set(problems ${problems} "${file} is in no layer folder (see the table in ${CMAKE_CURRENT_LIST_FILE})")
    continue()
  endif()
  file(STRINGS ${ROOT}/${file} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]*)\".*$" "\\1" name "${line}")
    check_include(${file} ${name})
    math(EXPR checked "${checked} + 1")
  endforeach()
endforeach()

if(problems)
  list(JOIN problems "\n  " text)
  message(FATAL_ERROR "layer violations:\n  ${text}")
endif()
list(LENGTH sources nfiles)
message(STATUS "${checked} includes in ${nfiles} files follow the layers")
