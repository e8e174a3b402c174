# What the wheel's LibTorch needs beyond TORCH_LIBRARIES (included from CMakeLists.txt after
# find_package(Torch)): c10d's Gloo and NCCL process groups, and a link that starts on a
# machine without a GPU driver.
#
# Gloo: the wheel ships ProcessGroupGloo.hpp but not the gloo headers it includes, so they
# come from Debian's libgloo-dev (gloo 2022-05, older than the wheel's own gloo). That is
# safe for the one use bireco makes of them (src/distributed/group.cpp): it calls only functions
# compiled into libtorch_cpu (the ProcessGroupGloo and Options constructors,
# createDeviceFor*), holds gloo objects only through the shared_ptrs those return, and the
# classes it allocates itself (ProcessGroupGloo::Options, ProcessGroupGloo) keep every gloo
# type behind a pointer, so no size or field offset comes from the older headers. No gloo
# code is compiled into bireco and no libgloo is linked (the test
# Build.NoGlooCodeFromDebianHeaders checks the binary's symbols).
#
# NCCL: a CUDA-enabled LibTorch has ProcessGroupNCCL; bireco compiles it against the nccl.h of
# the wheel's own nvidia-nccl package (the NCCL libtorch_cuda loads), never another one.
find_path(BIRECO_GLOO_INCLUDE_DIR gloo/algorithm.h)
if(NOT BIRECO_GLOO_INCLUDE_DIR)
  message(FATAL_ERROR "bireco: gloo headers not found (Debian: apt-get install libgloo-dev; "
                      "scripts/lib/deps.sh installs it)")
endif()

set(BIRECO_WITH_NCCL OFF)
if(TORCH_CUDA_LIBRARIES)  # set by TorchConfig.cmake for a CUDA-enabled LibTorch
  get_filename_component(_site_packages "${TORCH_INSTALL_PREFIX}/.." ABSOLUTE)
  find_path(BIRECO_NCCL_INCLUDE_DIR nccl.h PATHS "${_site_packages}/nvidia/nccl/include" NO_DEFAULT_PATH)
  if(NOT BIRECO_NCCL_INCLUDE_DIR)
    message(FATAL_ERROR "bireco: the CUDA LibTorch at ${TORCH_INSTALL_PREFIX} has no nvidia-nccl "
                        "package beside it (${_site_packages}/nvidia/nccl/include/nccl.h): "
                        "pip install the torch wheel with its dependencies")
  endif()
  file(STRINGS "${BIRECO_NCCL_INCLUDE_DIR}/nccl.h" _nccl_version_lines
       REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) ")
  string(REGEX REPLACE "[^0-9;]" "" _nccl_version "${_nccl_version_lines}")
  string(REPLACE ";" "." _nccl_version "${_nccl_version}")
  set(BIRECO_WITH_NCCL ON)
endif()
message(STATUS "bireco: CUDA ${CUDAToolkit_VERSION} NCCL ${BIRECO_WITH_NCCL} "
               "(${BIRECO_NCCL_INCLUDE_DIR} ${_nccl_version}) Gloo (${BIRECO_GLOO_INCLUDE_DIR})")

# bireco_use_torch_backends(TARGET): the compile flags c10d's headers test, and two link rules
# for everything linked with TARGET:
#  - --as-needed, so that libraries TORCH_LIBRARIES names but bireco never calls
#    (libcaffe2_nvrtc.so, which needs the driver's libcuda.so.1) do not become NEEDED entries:
#    the binaries must start on machines without a GPU driver;
#  - the system libstdc++ first in NEEDED. The wheel's libtorch.so and libtorch_cpu.so export
#    std::filesystem functions from a statically linked libstdc++ (pytorch issue 133437);
#    bound to those, std::filesystem::remove_all jumps to address 0. Loaded first, libstdc++.so
#    wins every such lookup.
function(bireco_use_torch_backends target)
  target_compile_definitions(${target} PUBLIC USE_C10D_GLOO
                             $<$<BOOL:${BIRECO_WITH_NCCL}>:USE_C10D_NCCL>)
  target_include_directories(${target} SYSTEM PUBLIC "${BIRECO_GLOO_INCLUDE_DIR}"
                             $<$<BOOL:${BIRECO_WITH_NCCL}>:${BIRECO_NCCL_INCLUDE_DIR}>)
  target_link_options(${target} INTERFACE
    "SHELL:-Wl,--push-state,--no-as-needed -lstdc++ -Wl,--pop-state" "LINKER:--as-needed")
endfunction()
