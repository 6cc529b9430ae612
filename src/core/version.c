#include "hidream.h"

const char *hd_version(void) { return HIDREAM_VERSION; }
