// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * The web configuration file (--web.config.file, user/agent/webcfg.c): any bytes as the
 * file. Besides crashes, leaks and undefined behaviour it checks what the parser promises:
 * a refused file leaves the configuration empty and says why, an accepted one has a
 * certificate and a key together or neither, and every user a name and a bcrypt hash.
 */
#include <errno.h>
#include "fuzz.h"
#include "agent/webcfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kw_webcfg cfg;
	char err[256];
	unsigned int i;
	int ret;

	ret = kw_webcfg_parse((const char *)data, size, &cfg, err, sizeof(err));
	if (ret) {
		FUZZ_CHECK(ret == -EINVAL || ret == -ENOMEM);
		FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
		FUZZ_CHECK(!cfg.cert_file && !cfg.key_file && !cfg.users && !cfg.nusers);
		return 0;
	}
	FUZZ_CHECK(!cfg.cert_file == !cfg.key_file);
	FUZZ_CHECK(!cfg.cert_pem && !cfg.key_pem); /* parse reads no file */
	FUZZ_CHECK(memchr(cfg.priorities, '\0', sizeof(cfg.priorities)));
	for (i = 0; i < cfg.nusers; i++) {
		FUZZ_CHECK(cfg.users[i].name && cfg.users[i].hash);
		FUZZ_CHECK(!strncmp(cfg.users[i].hash, "$2", 2));
	}
	kw_webcfg_free(&cfg);
	return 0;
}
