/*
** stb_impl.c: the one translation unit that compiles stb_image and stb_image_write from
** Debian's libstb-dev headers. stb_image only reads BMP, GIF, TGA and binary PNM (PNG and
** JPEG go through libpng and libjpeg-turbo, see compute/model/image.c). The side cap is
** stb's default, 2^24: what bounds memory is refract's pixel limit, checked from the
** header before stb decodes, so extreme aspect ratios are accepted as PIL accepts them.
*/
#include <stdlib.h>

/* Zeroed buffers: a decoder that stops short (stb_image 2.27's PNM and GIF readers do not
** always say so) leaves zeros, never uninitialised memory. */
#define STBI_MALLOC(sz) calloc(1, sz)
#define STBI_REALLOC(p, sz) realloc(p, sz)
#define STBI_FREE(p) free(p)
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
#define STBI_ONLY_PNM
#define STBI_MAX_DIMENSIONS (1 << 24)
#define STBI_NO_STDIO_CONVENIENCE_FOR_UTF8
#include <stb_image.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
