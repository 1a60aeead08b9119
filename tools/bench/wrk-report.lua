-- SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
-- wrk hook for the overhead benchmark: one machine-readable line at the end of a run.
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		'KWBENCH {"duration_us": %d, "requests": %d, "bytes": %d, "err_connect": %d, ' ..
		'"err_read": %d, "err_write": %d, "err_status": %d, "err_timeout": %d, ' ..
		'"lat_p50_us": %d, "lat_p99_us": %d}\n',
		summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write,
		e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
