# CUDA for the bsx engine: compiled when nvcc is found, skipped with one message otherwise.
#   -DBSX_CUDA=AUTO (default): use CUDA if a compiler is found
#   -DBSX_CUDA=ON: fail if no CUDA compiler is found
#   -DBSX_CUDA=OFF: CPU only
# Architectures: sm_90 (H100/H200) as SASS plus compute_90 PTX, so newer GPUs can JIT it.
# Override with -DCMAKE_CUDA_ARCHITECTURES=... (e.g. "80-real;90").
# cudart is linked statically so that the addon loads on a machine with no CUDA driver;
# the engine then reports `cuda: unavailable (<reason>)` at run time.

set(BSX_CUDA "AUTO" CACHE STRING "Build the CUDA backend: AUTO, ON or OFF")
set(BSX_HAVE_CUDA OFF)

if(NOT BSX_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS "/usr/local/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "/usr/local/bin/nvcc")
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES "90")
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(BSX_HAVE_CUDA ON)
    message(STATUS "bsx: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(BSX_CUDA STREQUAL "ON")
    message(FATAL_ERROR "bsx: BSX_CUDA=ON but no CUDA compiler was found")
  else()
    message(STATUS "bsx: CUDA backend OFF (no CUDA compiler found)")
  endif()
else()
  message(STATUS "bsx: CUDA backend OFF (BSX_CUDA=OFF)")
endif()

# bsx_cuda_target(<target>): the CUDA settings of every target with CUDA sources (the addon,
# the kernel lab): BSX_WITH_CUDA, cudart static, whole-program compilation, -O3 with line info.
function(bsx_cuda_target target)
  target_compile_definitions(${target} PRIVATE BSX_WITH_CUDA=1)
  set_target_properties(${target} PROPERTIES
    CUDA_RUNTIME_LIBRARY Static
    CUDA_SEPARABLE_COMPILATION OFF)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-O3 -lineinfo --expt-relaxed-constexpr>)
endfunction()
