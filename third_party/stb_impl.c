/*
** stb_impl.c: the one translation unit that compiles stb_image and stb_image_write from
** Debian's libstb-dev headers, restricted to the formats refract reads and with a cap
** on dimensions so a hostile header cannot force a huge allocation.
*/
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_MAX_DIMENSIONS (1 << 15)
#define STBI_NO_STDIO_CONVENIENCE_FOR_UTF8
#include <stb_image.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
