# Compiler settings shared by the native builds.
# The build never assumes the build machine's CPU: the portable code is compiled for
# baseline x86-64 (or the target's default), and each SIMD kernel file is compiled with
# its own ISA flags via bsx_simd_source(). The engine picks a kernel at run time (CPUID).

set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
set(CMAKE_CXX_VISIBILITY_PRESET hidden)

if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release)
endif()

if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-O3> $<$<COMPILE_LANGUAGE:CXX>:-fno-math-errno>
                      $<$<COMPILE_LANGUAGE:CXX>:-Wall> $<$<COMPILE_LANGUAGE:CXX>:-Wextra>
                      $<$<COMPILE_LANGUAGE:CXX>:-Wno-unused-parameter>)
endif()

set(BSX_X86 OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  set(BSX_X86 ON)
endif()

# bsx_simd_source(<file> AVX2|AVX512): compile one source with the flags of one ISA level.
function(bsx_simd_source file level)
  if(NOT BSX_X86)
    return()
  endif()
  if(level STREQUAL "AVX2")
    set_source_files_properties(${file} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  elseif(level STREQUAL "AVX512")
    set_source_files_properties(${file} PROPERTIES COMPILE_OPTIONS "-mavx512f;-mavx512vl;-mavx512bw;-mavx512dq;-mavx2;-mfma;-mf16c")
  else()
    message(FATAL_ERROR "bsx_simd_source: unknown level ${level}")
  endif()
endfunction()
