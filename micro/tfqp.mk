# The TFQP ops for a Makefile-built TensorFlow Lite Micro firmware: include this
# file, then compile $(TFQP_C_SRCS) and $(TFQP_CXX_SRCS) with $(TFQP_INCLUDES) and
# $(TFQP_FLAGS) added to the project's own flags, and register the ops with
# tfqp::RegisterOps(resolver) (tfqp/tflm/tfqp_ops.h).
#
#   TFQP_CORE := cortex-m4+fp        # optional; default $(TARGET_ARCH), as TFLM names it
#   include path/to/tfq-plus/micro/tfqp.mk
#   SRCS += $(TFQP_C_SRCS) $(TFQP_CXX_SRCS)
#   CPPFLAGS += $(TFQP_INCLUDES) $(TFQP_FLAGS)
#
# micro/examples/cortex_m4/Makefile builds its firmware this way.
#
# Defines (nothing else is required; nothing here adds rules or targets):
#   TFQP_DIR       this directory (micro/)
#   TFQP_C_SRCS    the portable C99 kernel core and its Cortex-M kernels
#                  (kernels/*.c; they need a C99 or later -std)
#   TFQP_CXX_SRCS  the TFLite Micro adapters (tflm/tfqp_ops.cc) and their glue
#                  (common/tfqp_glue.cc); C++17 like TFLite Micro itself
#   TFQP_HDRS      every header of the above (for dependencies / project export)
#   TFQP_INCLUDES  -I flags for the sources and for the code calling tfqp::RegisterOps;
#                  TFLite Micro's own include paths come from the project
#   TFQP_FLAGS     the per-core flags: empty on cores with the DSP extension
#                  (cortex-m4, m7, m33, m55, m85 and their +fp variants: the Thumb-2
#                  assembly kernels, selected by __ARM_FEATURE_DSP), -DTFQP_PORTABLE
#                  on every other core (Cortex-M0/M0+/M3, +nodsp variants), where
#                  the portable C99 path is the one that compiles. Both give the
#                  same bytes. Empty TFQP_CORE (a host build): the compiler picks
#                  the path (x86-64 with AVX2 or POPCNT uses it).

TFQP_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

TFQP_CORE ?= $(TARGET_ARCH)

TFQP_C_SRCS := $(wildcard $(TFQP_DIR)/kernels/*.c)
TFQP_CXX_SRCS := $(TFQP_DIR)/tflm/tfqp_ops.cc $(TFQP_DIR)/common/tfqp_glue.cc
TFQP_HDRS := $(wildcard $(TFQP_DIR)/include/tfqp/*.h $(TFQP_DIR)/kernels/*.h) \
             $(TFQP_DIR)/common/tfqp_glue.h $(TFQP_DIR)/tflm/include/tfqp/tflm/tfqp_ops.h
TFQP_INCLUDES := -I$(TFQP_DIR)/include -I$(TFQP_DIR)/kernels -I$(TFQP_DIR)/common \
                 -I$(TFQP_DIR)/tflm/include

# Cores whose GCC/Clang targets define __ARM_FEATURE_DSP (TFLM's TARGET_ARCH names).
TFQP_DSP_CORES := cortex-m4 cortex-m4+fp cortex-m4+sfp cortex-m7 cortex-m7+fp cortex-m33 \
                  cortex-m55 cortex-m55+nofp cortex-m85
ifeq ($(strip $(TFQP_CORE)),)
  TFQP_FLAGS :=
else ifneq ($(filter cortex-m%,$(TFQP_CORE)),)
  TFQP_FLAGS := $(if $(filter $(TFQP_DSP_CORES),$(TFQP_CORE)),,-DTFQP_PORTABLE)
else
  # a host or another architecture: its compiler selects the kernels
  TFQP_FLAGS :=
endif
