-- SPDX-License-Identifier: MIT
-- wrk reporting for bench/run.sh: one machine-readable line after wrk's own summary,
-- so the script reads figures without scraping wrk's human-oriented units.  Used
-- alone for the GET benchmarks (the Authorization header comes from wrk -H).
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK requests=%d duration_us=%d non2xx=%d sockerr=%d p50_us=%d p99_us=%d\n",
      summary.requests, summary.duration, e.status,
      e.connect + e.read + e.write + e.timeout,
      math.floor(latency:percentile(50)), math.floor(latency:percentile(99))))
end
