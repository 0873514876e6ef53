# The TFQP ops for CMake-built TensorFlow Lite Micro firmware (Zephyr, vendor
# SDKs, host tests): defines the static library target `tfqp` (alias tfqp::tfqp)
# with the portable C99 kernel core, its Cortex-M kernels and the TFLite Micro
# adapters; link it, include "tfqp/tflm/tfqp_ops.h" and call
# tfqp::RegisterOps(resolver).
#
#   set(TFQP_TFLM_TARGET tflite-micro)       # the project's TFLite Micro target
#   set(TFQP_CORE cortex-m4)                 # optional, see below
#   include(path/to/tfq-plus/micro/tfqp.cmake)   # or add_subdirectory(path/to/micro)
#   target_link_libraries(app PRIVATE tfqp::tfqp)
#
# TFLite Micro comes from the parent project, never from here:
#   TFQP_TFLM_TARGET         a target whose usage requirements carry TFLite Micro's
#                            include directories and defines (linked PUBLIC), or
#   TFQP_TFLM_INCLUDE_DIRS   its include directories (TFLM root, flatbuffers/include,
#                            gemmlowp, ...) and
#   TFQP_TFLM_DEFINITIONS    the defines TFLite Micro was built with (default
#                            TF_LITE_STATIC_MEMORY: the adapters must see the same
#                            TfLiteTensor layout as the library).
# TFQP_CORE picks the kernel path like tfqp.mk: a Cortex-M core with the DSP
# extension (cortex-m4, cortex-m7, cortex-m33, cortex-m55, cortex-m85, with their
# +fp variants) keeps the Thumb-2 assembly kernels (selected from
# __ARM_FEATURE_DSP), any other cortex-m* core gets TFQP_PORTABLE (the portable
# C99 path); empty (the default) leaves the choice to the compiler's target.
# TFQP_PORTABLE=ON forces the portable path anywhere. Both paths give the same bytes.

if(TARGET tfqp)
  return()
endif()

set(TFQP_DIR "${CMAKE_CURRENT_LIST_DIR}")
set(TFQP_CORE "" CACHE STRING "Cortex-M core the TFQP kernels are built for (e.g. cortex-m4)")
option(TFQP_PORTABLE "Build the portable C99 kernels on any core" OFF)
set(TFQP_TFLM_DEFINITIONS "TF_LITE_STATIC_MEMORY" CACHE STRING
    "Defines TFLite Micro was built with (used with TFQP_TFLM_INCLUDE_DIRS)")

if(NOT TFQP_TFLM_TARGET AND NOT TFQP_TFLM_INCLUDE_DIRS)
  message(FATAL_ERROR "tfqp.cmake: set TFQP_TFLM_TARGET to the project's TensorFlow Lite "
                      "Micro target, or TFQP_TFLM_INCLUDE_DIRS to its include directories")
endif()
if(TFQP_TFLM_TARGET AND NOT TARGET ${TFQP_TFLM_TARGET})
  message(FATAL_ERROR "tfqp.cmake: TFQP_TFLM_TARGET is '${TFQP_TFLM_TARGET}', which is not "
                      "a target of this project (define TFLite Micro's target first)")
endif()

file(GLOB TFQP_C_SOURCES CONFIGURE_DEPENDS "${TFQP_DIR}/kernels/*.c")
add_library(tfqp STATIC
  ${TFQP_C_SOURCES}
  "${TFQP_DIR}/tflm/tfqp_ops.cc"
  "${TFQP_DIR}/common/tfqp_glue.cc")
add_library(tfqp::tfqp ALIAS tfqp)

# C99 kernels, C++17 adapters (TFLite Micro's own standard)
set_target_properties(tfqp PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF
                                      CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
target_include_directories(tfqp
  PUBLIC "${TFQP_DIR}/include" "${TFQP_DIR}/tflm/include"
  PRIVATE "${TFQP_DIR}/kernels" "${TFQP_DIR}/common")

if(TFQP_TFLM_TARGET)
  target_link_libraries(tfqp PUBLIC ${TFQP_TFLM_TARGET})
else()
  target_include_directories(tfqp SYSTEM PUBLIC ${TFQP_TFLM_INCLUDE_DIRS})
  target_compile_definitions(tfqp PUBLIC ${TFQP_TFLM_DEFINITIONS})
endif()

# The kernel path (the same rule as tfqp.mk's TFQP_FLAGS).
set(TFQP_DSP_CORES cortex-m4 cortex-m4+fp cortex-m4+sfp cortex-m7 cortex-m7+fp cortex-m33
                   cortex-m55 cortex-m55+nofp cortex-m85)
if(TFQP_PORTABLE)
  target_compile_definitions(tfqp PRIVATE TFQP_PORTABLE)
elseif(TFQP_CORE MATCHES "^cortex-m")
  if(NOT TFQP_CORE IN_LIST TFQP_DSP_CORES)
    target_compile_definitions(tfqp PRIVATE TFQP_PORTABLE)
  endif()
endif()

# TFLite Micro's flags for C++ (no RTTI or exceptions), per-function sections so
# --gc-sections drops what a model does not use.
target_compile_options(tfqp PRIVATE
  $<$<COMPILE_LANGUAGE:CXX>:-fno-rtti>
  $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions>
  $<$<COMPILE_LANGUAGE:CXX>:-fno-threadsafe-statics>
  -ffunction-sections -fdata-sections)
