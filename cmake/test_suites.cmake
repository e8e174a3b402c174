# What the two test binaries share: bireco_tests (tests/CMakeLists.txt, every suite, against
# LibTorch) and bireco_tests_lite (cmake/torch_free.cmake, the torch-free suites under ASan +
# UBSan). One list of the torch-free suites, so that a new one joins both builds at once.

# Suites whose code never includes LibTorch: the sanitized build runs them, the normal build
# compiles them without the LibTorch precompiled header.
file(GLOB_RECURSE BIRECO_TORCH_FREE_TEST_SOURCES CONFIGURE_DEPENDS
  "${CMAKE_SOURCE_DIR}/tests/util/*.cpp" "${CMAKE_SOURCE_DIR}/tests/config/*.cpp"
  "${CMAKE_SOURCE_DIR}/tests/text/*.cpp")
list(APPEND BIRECO_TORCH_FREE_TEST_SOURCES
  "${CMAKE_SOURCE_DIR}/tests/data_pipeline/test_readers.cpp"
  "${CMAKE_SOURCE_DIR}/tests/data_pipeline/test_beir.cpp"
  "${CMAKE_SOURCE_DIR}/tests/data_pipeline/test_sampler.cpp"
  "${CMAKE_SOURCE_DIR}/tests/data_pipeline/test_dataset_checks.cpp"
  "${CMAKE_SOURCE_DIR}/tests/model/test_safetensors_header.cpp"
  "${CMAKE_SOURCE_DIR}/tests/model/test_model_config.cpp")

# The Python holding the pinned Python stack (scripts/lib/python-tools.txt) that tests compare
# against: scripts/lib/deps.sh configures with Python_EXECUTABLE, the .venv beside the torch wheel.
set(BIRECO_TOOLS_PYTHON "${Python_EXECUTABLE}" CACHE FILEPATH
    "Python with transformers, peft, sentence-transformers... for the tests that run the Python stack")

# The include folder and the paths the suites find their data by (tests/test_support.h);
# `binary` is the bireco executable the CLI suites run ("" where none is built).
function(bireco_test_target target binary)
  target_include_directories(${target} PRIVATE "${CMAKE_SOURCE_DIR}/tests")
  target_compile_definitions(${target} PRIVATE
    BIRECO_TEST_DATA_DIR="${CMAKE_SOURCE_DIR}/tests/data"
    BIRECO_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    BIRECO_DEFAULT_SHARED_DIR="${BIRECO_SHARED_DIR}"
    BIRECO_BINARY="${binary}"
    BIRECO_DEFAULT_PYTHON="${BIRECO_TOOLS_PYTHON}")
endfunction()
