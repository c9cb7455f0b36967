// Assertions for bugs (never for user input, which gets a Status): print file:line and abort.
#pragma once

#include <cstdio>
#include <cstdlib>

#define RAG_CHECK(cond)                                                              \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "FATAL %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)
