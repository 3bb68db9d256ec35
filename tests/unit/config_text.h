/* config_text.h - loading INI text in the config suites without files to clean up. */
#ifndef HERALD_TEST_CONFIG_TEXT_H
#define HERALD_TEST_CONFIG_TEXT_H

#include <stddef.h>

#include "config.h"

/* The one key every file needs, appended to test texts. */
#define SECRET_LINE "[auth]\nsecret = s3cret-for-tests\n"

/* Load INI text from an anonymous memory file (nothing to clean up). The path in messages
 * is /proc/self/fd/N; it is copied to path_out (at least 64 bytes) when given. Returns
 * config_load's result. */
int config_text_load(herald_config_t *cfg, const char *text, herald_error_t *err, char *path_out);

/* The path of deploy/herald.ini in the source tree (HERALD_SOURCE_ROOT, set by meson test). */
void config_text_deploy_ini(char *buf, size_t n);

#endif
