// ParsePdf in a child process (internal to ingest/), for ParseDocument (parser.h).
//
// Why: poppler does unbounded work on hostile PDFs that a size check cannot see: a 1.7 KB file
// whose page draws a one-word form 100000 times made poppler's text extraction grow past 700 MB
// and run for minutes (measured: still running after 120 s), and nested forms multiply that.
// Poppler cannot be interrupted from outside, and a crash inside it would end the server. So the
// parse runs in another process: the reader program rag-pdf-reader (ingest/pdf_reader_main.cc,
// built beside `rag`), started by fork and exec and handed the PDF's bytes on its stdin. The
// parent waits for its answer on a pipe and kills it past PdfReadLimits::max_seconds, or once its
// resident memory has grown by more than max_memory_bytes (checked every 200 ms); its address
// space is capped as well (RLIMIT_AS), so it usually fails an allocation first. It dies with the
// thread that started it (PR_SET_PDEATHSIG) and keeps no descriptor but its two channels (no
// listening socket outlives a killed server).
//
// Between the fork and the exec the child makes no allocation and takes no lock: a fork copies
// the locks other threads of the server hold at that moment, without the threads that would
// release them. Where the program cannot be found the child reads the PDF itself after a plain
// fork, where such a lock can stop it (seen once in a loaded test run, an upload's reader still
// waiting after 300 s; it never logs, for that reason, and ends with _exit). For both, a child
// asleep for max_stall_seconds without using the CPU is killed and the PDF read again, up to
// kPdfReaderAttempts times. Thread-safety: any number of threads may call this at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "ingest/document.h"
#include "ingest/parser.h"

namespace rag::ingest_internal {

// ParsePdf's result from a child process within `limits`. A child killed for time or memory is
// ResourceExhausted naming the limit; one that crashed (a signal) is InvalidArgument ("the PDF
// crashed the PDF reader"). When no process can be started (fork fails) it parses in this
// process instead, with a warning.
// A child stuck every time is an Internal error naming the stall.
StatusOr<ParsedDocument> ParsePdfInChildProcess(std::string_view bytes, const std::string& filename,
                                                const PdfReadLimits& limits);
inline constexpr int kPdfReaderAttempts = 3;

// Tests: a function every child calls first with its attempt number (0, 1, ...), to stand for
// a child that blocks on an inherited lock. nullptr (the default) for none; set it while no PDF
// is being read.
void SetPdfReaderChildHookForTesting(void (*hook)(int attempt));
// Tests: how many times the reader program was started (0 where it was not found).
int64_t PdfReaderProgramRuns();

// False in AddressSanitizer builds: their allocator (gcc 12's libasan) is not fork-safe. A
// thread that allocates while another forks leaves the allocator's lock held in the child, whose
// first allocation of that size then waits for ever (seen: `rag ingest --jobs 2` of the sample
// corpus hung in build-asan, both threads of the child in SizeClassAllocator64::GetFromAllocator).
// ParseDocument then reads PDFs in the process itself, without the time and memory limits;
// glibc's malloc, in every other build, takes its locks around fork.
bool PdfChildProcessesAreSafe();

}  // namespace rag::ingest_internal
