# The checking builds of the code that never includes LibTorch (BIRECO_SANITIZE, BIRECO_FUZZ;
# included from CMakeLists.txt, which then stops): one library of util, config, text, the data
# readers, the safetensors header parser and config.json's reader, built with ASan + UBSan
# (plus libFuzzer's coverage hooks under BIRECO_FUZZ); their test suites as bireco_tests_lite;
# and each fuzz/<target>.cpp as fuzz_<target>. Configuring needs no LibTorch and takes seconds.
if(BIRECO_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "BIRECO_FUZZ needs clang for libFuzzer: -DCMAKE_CXX_COMPILER=clang++-14")
endif()

# -fno-sanitize-recover: the first UBSan report fails the run instead of printing and going on.
set(BIRECO_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer)
set(BIRECO_LITE_COMPILE_FLAGS ${BIRECO_SANITIZER_FLAGS})
if(BIRECO_FUZZ)
  # Coverage instrumentation without libFuzzer's main(): the same library serves the fuzzers
  # and bireco_tests_lite (the hooks cost the tests little).
  list(APPEND BIRECO_LITE_COMPILE_FLAGS -fsanitize=fuzzer-no-link)
endif()

file(GLOB_RECURSE BIRECO_LITE_SOURCES CONFIGURE_DEPENDS
  "${CMAKE_SOURCE_DIR}/src/util/*.cpp" "${CMAKE_SOURCE_DIR}/src/config/*.cpp"
  "${CMAKE_SOURCE_DIR}/src/text/*.cpp" "${CMAKE_SOURCE_DIR}/src/data/*.cpp")
# The collator builds torch tensors (data/batch.h).
list(FILTER BIRECO_LITE_SOURCES EXCLUDE REGEX "/src/data/collator\\.cpp$")
list(APPEND BIRECO_LITE_SOURCES "${CMAKE_SOURCE_DIR}/src/model/safetensors_header.cpp"
  "${CMAKE_SOURCE_DIR}/src/model/model_config.cpp")
add_library(bireco_lite STATIC ${BIRECO_LITE_SOURCES})
target_include_directories(bireco_lite PUBLIC "${CMAKE_SOURCE_DIR}/include")
target_link_libraries(bireco_lite PUBLIC nlohmann_json::nlohmann_json spdlog::spdlog
  ${BIRECO_YAML_TARGET} PkgConfig::PCRE2 PkgConfig::UTF8PROC PkgConfig::SENTENCEPIECE
  Threads::Threads)
target_compile_definitions(bireco_lite PUBLIC PCRE2_CODE_UNIT_WIDTH=8
  BIRECO_VERSION="${PROJECT_VERSION}")
target_compile_options(bireco_lite PUBLIC ${BIRECO_LITE_COMPILE_FLAGS})
target_compile_options(bireco_lite PRIVATE -Wall -Wextra -Wno-unused-parameter)
target_link_options(bireco_lite PUBLIC ${BIRECO_SANITIZER_FLAGS})

if(BIRECO_SANITIZE)
  find_package(GTest REQUIRED)
  include(GoogleTest)
  # The torch-free suites (cmake/test_suites.cmake); tests/cli needs the bireco executable,
  # which is not built here.
  include("${CMAKE_SOURCE_DIR}/cmake/test_suites.cmake")
  add_executable(bireco_tests_lite ${BIRECO_TORCH_FREE_TEST_SOURCES})
  target_link_libraries(bireco_tests_lite PRIVATE bireco_lite GTest::gtest GTest::gtest_main)
  bireco_test_target(bireco_tests_lite "")
endif()

if(BIRECO_FUZZ)
  add_subdirectory(fuzz)
endif()
