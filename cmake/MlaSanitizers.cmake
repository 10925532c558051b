# ASan + UBSan for the whole build (our code and tests); halts on the first UB report.
if(MLA_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# ThreadSanitizer: clang with LLVM's libomp, whose OpenMP synchronisation TSan understands through
# the Archer tool (OMP_TOOL_LIBRARIES=libarcher.so at run time). GCC's libgomp is not
# instrumented, so its barriers look like races. oneDNN (built against libgomp) then runs on
# libomp too: the executable loads libomp first, which provides the GOMP_* entry points.
if(MLA_TSAN)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "MLA_TSAN needs clang (CXX=clang++): GCC's libgomp gives TSan false positives")
  endif()
  if(MLA_SANITIZE)
    message(FATAL_ERROR "MLA_TSAN and MLA_SANITIZE cannot be combined")
  endif()
  # TSan's instrumentation keeps clang from vectorising `omp simd` loops, which it reports as a
  # warning (-Wpass-failed): expected here, not a defect of the code.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -Wno-pass-failed)
  add_link_options(-fsanitize=thread)
endif()
