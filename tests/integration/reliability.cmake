# Reliability tests (docs/RELIABILITY.md), included by tests/CMakeLists.txt when the server builds.
#   integration.crash_safety  `rag ingest` and `rag serve` killed with SIGKILL at random points
#                             (22 trials, ~1-2 min on 2 cores), then restarted and checked
#   integration.full_disk     a 2 MiB tmpfs (as root) or RLIMIT_FSIZE; skips (77) without either
#   integration.soak          mixed uploads, queries and deletes at concurrency 32 for 25 s (the
#                             documented run is 10 minutes: bench/soak.sh)
# Standard-library Python only (Debian's python3, as CI has it).

# tests/testing/pdf_writer.h compresses the streams of the PDFs it writes.
find_package(ZLIB REQUIRED)
if(TARGET server_tests)
  target_link_libraries(server_tests PRIVATE ZLIB::ZLIB)
endif()

if(TARGET rag AND RAG_TOOLS_PYTHON)
  set(dir ${CMAKE_CURRENT_LIST_DIR})
  set(reliability_tests integration.soak)
  add_test(NAME integration.soak
           COMMAND ${RAG_TOOLS_PYTHON} ${dir}/soak_test.py $<TARGET_FILE:rag> --duration 25)
  set_tests_properties(integration.soak PROPERTIES LABELS integration TIMEOUT 300)
  # The kill and full-disk trials test durability, not memory safety, and need whole ingestions
  # that take minutes each under the sanitizers (one `rag ingest` of a trial ran past 300 s in
  # build-asan on 2 cores): they run in the plain build only. The repair code they reach runs
  # under the sanitizers in the unit tests (retrieval_crash_repair, server_crash_recovery,
  # common_crash_files).
  if(NOT RAG_SANITIZE)
    list(APPEND reliability_tests integration.crash_safety integration.full_disk)
    add_test(NAME integration.crash_safety
             COMMAND ${RAG_TOOLS_PYTHON} ${dir}/crash_safety_test.py $<TARGET_FILE:rag> --part kill --trials 22)
    set_tests_properties(integration.crash_safety PROPERTIES LABELS integration TIMEOUT 900)
    add_test(NAME integration.full_disk
             COMMAND ${RAG_TOOLS_PYTHON} ${dir}/crash_safety_test.py $<TARGET_FILE:rag> --part disk)
    set_tests_properties(integration.full_disk PROPERTIES LABELS integration TIMEOUT 600 SKIP_RETURN_CODE 77)
  endif()
  foreach(test ${reliability_tests})
    if(RAG_TEST_ENVIRONMENT)
      set_tests_properties(${test} PROPERTIES ENVIRONMENT "${RAG_TEST_ENVIRONMENT}")
    endif()
  endforeach()
endif()
