-- SPDX-License-Identifier: MIT
-- wrk script: every request posts one message to the group QUN_BENCH_GROUP as the
-- holder of QUN_BENCH_TOKEN.  The body is fixed (the same text the C benchmarks
-- insert, see BENCH_TEXT in bench.h) so wrk spends no time building requests on the
-- two cores it shares with qund.
wrk.method = "POST"
wrk.path = "/v1/groups/" .. os.getenv("QUN_BENCH_GROUP") .. "/messages"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("QUN_BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"text":"benchmark message: the quick brown fox jumps over the lazy dog"}'

dofile("bench/report.lua")
