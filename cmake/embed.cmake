# embed.cmake - a file's bytes as a C array, at build time:
#   cmake -DIN=FILE -DOUT=FILE.c -DNAME=SYMBOL -P embed.cmake
# writes `const char SYMBOL[]` (the bytes and a NUL, which the length does
# not count) and `const size_t SYMBOL_len`: what the chime command serves
# as its status page, with no tool beyond CMake.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR bytes "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE "${OUT}.tmp" "/* ${NAME}: generated from ${IN} by embed.cmake; do not edit. */\n#include <stddef.h>\n"
  "const char ${NAME}[] = {\n${body}0};\nconst size_t ${NAME}_len = ${bytes};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
