# tcmalloc (Debian's libtcmalloc-minimal4) for the executables that train and embed. glibc's
# malloc hands every freed block above its mmap threshold back to the kernel, so each of a
# training step's thousands of activation-sized allocations faults its pages in again: on a
# 2-core CPU a SmolLM2 stage-I step spent a third of its time in the kernel (bench/run.sh
# --profile: aten::fill_ and the first op to touch each buffer). tcmalloc keeps freed spans
# for reuse: the same step ran 23.2 -> 16.1 s and its peak RSS 3.6 -> 2.9 GB. LibTorch's CPU
# tuning guide recommends the same (or jemalloc). Where the library is absent (the lent GPU
# machine has no apt) the executables use glibc's malloc and CMake says so.
find_library(BIRECO_TCMALLOC NAMES tcmalloc_minimal libtcmalloc_minimal.so.4)
if(BIRECO_TCMALLOC)
  message(STATUS "bireco: executables use tcmalloc (${BIRECO_TCMALLOC})")
else()
  message(STATUS "bireco: libtcmalloc_minimal not found; executables use glibc's malloc (slower on CPU)")
endif()

# Linked without --as-needed (cmake/torch_backends.cmake turns it on), so that the NEEDED entry
# exists, and among the libraries (after libstdc++, which must stay first, and before the
# implicit libc), so that its malloc / operator new bind before glibc's.
function(bireco_use_tcmalloc target)
  if(BIRECO_TCMALLOC)
    target_link_libraries(${target} PRIVATE
      "-Wl,--push-state,--no-as-needed" "${BIRECO_TCMALLOC}" "-Wl,--pop-state")
  endif()
endfunction()
