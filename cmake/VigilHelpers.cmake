# Warning flags and helpers shared by every target.
set(VIGIL_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast)
if(VIGIL_WERROR)
  list(APPEND VIGIL_WARNINGS -Werror)
endif()
if(VIGIL_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# vigil_library(name SOURCES ... DEPS ... [PRIVATE_DEPS ...]): a directory's library with its
# public headers under include/.
function(vigil_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_compile_options(${name} PRIVATE ${VIGIL_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

# vigil_executable(name SOURCES ... DEPS ...)
function(vigil_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${VIGIL_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()

# vigil_add_test(name SOURCES ... DEPS ... LABEL unit|rxe [TIMEOUT s] [ENV k=v ...]): one gtest
# binary registered with ctest as one test carrying the tier label.
function(vigil_add_test name)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "SOURCES;DEPS;ENV" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${VIGIL_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  if(TARGET vigil_test_plaintext)
    target_link_libraries(${name} PRIVATE vigil_test_plaintext)
  endif()
  # tests/: helpers every tier shares (loopback_channel.h).
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name} --gtest_color=no)
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABEL}" TIMEOUT ${ARG_TIMEOUT}
                                          ENVIRONMENT "${ARG_ENV}")
endfunction()

# vigil_add_bench(name SOURCES ... DEPS ...): a benchmark executable.
function(vigil_add_bench name)
  vigil_executable(${name} ${ARGN})
endfunction()

# vigil_add_cli_test(name LABEL l EXIT status|nonzero MATCH regex [TIMEOUT s] COMMAND cmd...): a
# command line whose exit status and output (stdout + stderr) are both checked (tests/expect.sh;
# ctest's PASS_REGULAR_EXPRESSION alone would ignore the exit status).
function(vigil_add_cli_test name)
  cmake_parse_arguments(ARG "" "LABEL;EXIT;MATCH;TIMEOUT" "COMMAND" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 60)
  endif()
  add_test(NAME ${name} COMMAND bash ${PROJECT_SOURCE_DIR}/tests/expect.sh ${ARG_EXIT} ${ARG_MATCH}
                                ${ARG_COMMAND})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABEL}" TIMEOUT ${ARG_TIMEOUT})
endfunction()
