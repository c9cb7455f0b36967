// `rag quantize --model DIR --out DIR [--force]`: the model's decoder projections as FP8 e4m3 with
// a scale per output row (engine/quantize.h), with a progress bar and a one-line summary.
#include <cstdio>

#include "common/progress_bar.h"
#include "engine/quantize.h"
#include "server/cli_commands.h"

namespace rag {

int RunQuantizeCommand(const QuantizeFlags& flags) {
  ProgressBar bar("quantize", 0);
  auto report = QuantizeModelFp8(flags.model_dir, flags.out_dir, flags.force,
                                 [&bar](int64_t done, int64_t total) {
                                   bar.SetTotal(static_cast<size_t>(total));
                                   bar.Add(static_cast<size_t>(done) - bar.done());
                                 });
  bar.Finish();
  if (!report.ok()) {
    std::fprintf(stderr, "rag quantize: %s\n", report.status().message().c_str());
    return 1;
  }
  std::printf("quantized %lld matrices to FP8 e4m3 (relative RMS error %.4f), copied %lld tensors: "
              "%.1f MB -> %.1f MB in %s\n",
              static_cast<long long>(report->quantized), report->relative_rms_error,
              static_cast<long long>(report->copied), report->bytes_in / 1e6, report->bytes_out / 1e6,
              flags.out_dir.c_str());
  return 0;
}

}  // namespace rag
