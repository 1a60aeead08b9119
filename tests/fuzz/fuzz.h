/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/*
 * What every libFuzzer harness of tests/fuzz shares: the entry point libFuzzer calls, and
 * a check that aborts (a finding, with the input saved) when a property of the code under
 * test does not hold. Sanitizer reports (ASan, UBSan) are findings too.
 */
#ifndef KW_FUZZ_H
#define KW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: property does not hold: %s\n", __FILE__, __LINE__, \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The input as a NUL-terminated string (cut at its first NUL), to free(). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif /* KW_FUZZ_H */
