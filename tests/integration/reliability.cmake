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
  add_test(NAME integration.crash_safety
           COMMAND ${RAG_TOOLS_PYTHON} ${dir}/crash_safety_test.py $<TARGET_FILE:rag> --part kill --trials 22)
  set_tests_properties(integration.crash_safety PROPERTIES LABELS integration TIMEOUT 900)
  add_test(NAME integration.full_disk
           COMMAND ${RAG_TOOLS_PYTHON} ${dir}/crash_safety_test.py $<TARGET_FILE:rag> --part disk)
  set_tests_properties(integration.full_disk PROPERTIES LABELS integration TIMEOUT 600 SKIP_RETURN_CODE 77)
  add_test(NAME integration.soak
           COMMAND ${RAG_TOOLS_PYTHON} ${dir}/soak_test.py $<TARGET_FILE:rag> --duration 25)
  set_tests_properties(integration.soak PROPERTIES LABELS integration TIMEOUT 300)
  foreach(test integration.crash_safety integration.full_disk integration.soak)
    if(RAG_TEST_ENVIRONMENT)
      set_tests_properties(${test} PROPERTIES ENVIRONMENT "${RAG_TEST_ENVIRONMENT}")
    endif()
  endforeach()
endif()
