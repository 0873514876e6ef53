// TFLite Micro's logging hooks (tensorflow/lite/micro/debug_log.h) on the
// semihosting console: MicroPrintf and the interpreter's error messages appear
// on the host (qemu's stdout, or the debugger's console on a board).
#include <cstdarg>
#include <cstddef>
#include <cstdio>

extern "C" {
#include "semihosting.h"
}

extern "C" int DebugVsnprintf(char* buffer, size_t buf_size, const char* format,
                              va_list vlist) {
  return vsnprintf(buffer, buf_size, format, vlist);
}

extern "C" void DebugLog(const char* format, va_list args) {
  char line[256];
  vsnprintf(line, sizeof line, format, args);
  semihosting_write(line);
}
