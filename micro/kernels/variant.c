/* Which compile-time kernel path this build uses (reported by the Python
 * extension and the C tests). */
#include "tfqp/status.h"
#include "xnor_arm.h"
#include "xnor_popcount.h"

const char *tfqp_kernel_variant(void) {
#if TFQP_HAVE_AVX2
  return "x86-64 popcnt64 + avx2";
#elif TFQP_HAVE_POPCOUNT64
  return "x86-64 popcnt64";
#elif TFQP_HAVE_ARM_DSP
  return "cortex-m dsp (thumb-2 assembly)";
#else
  return "portable c99";
#endif
}
