/* Temporary files that a fatal signal must not leave behind.
 *
 * Outputs are written to a temporary name and renamed into place, so a failed run leaves no
 * half-written file. A SIGINT/SIGTERM/SIGHUP arriving while the temporary file exists would
 * otherwise kill the process before its cleanup runs. While at least one temporary file is
 * registered, those signals — where their disposition is still the default, i.e. they would
 * terminate the process — go through a handler that unlinks every registered file and then
 * re-raises the signal with the default action. A program with its own handlers (hidream train)
 * keeps them: it is not killed, so its normal cleanup runs. */
#ifndef HD_CORE_TEMP_GUARD_H
#define HD_CORE_TEMP_GUARD_H

#include <signal.h>
#include <stdio.h>

#include "hidream.h"

/* Blocks the guarded signals in the calling thread (old mask into *old) / restores the mask.
 * Creating a temporary file and registering it happen between the two, so no signal can fall
 * between them and leave an unregistered file. */
void hd_temp_guard_block(sigset_t *old);
void hd_temp_guard_unblock(const sigset_t *old);

/* Registers path (which must stay valid until hd_temp_guard_remove) and returns a slot number,
 * or -1 when all slots are taken (the file is then simply not guarded). Thread-safe. */
int hd_temp_guard_add(const char *path);

/* Unregisters a slot from hd_temp_guard_add (-1 is ignored); restores the previous signal
 * dispositions when the last file is unregistered. Call it before unlinking or renaming. */
void hd_temp_guard_remove(int slot);

/* An output written to PATH.tmp under a guard and renamed into place on success: the pattern
 * every file writer shares. hd_tmp_file_open creates it (one line on failure); hd_tmp_file_finish
 * closes it and, when rc is 0, renames it to path, else removes it; it returns the final rc
 * (close and rename failures set e). */
typedef struct hd_tmp_file {
    FILE *f;
    char tmp[4096];
    int guard;
} hd_tmp_file;

int hd_tmp_file_open(hd_tmp_file *t, const char *path, hd_error *e);
int hd_tmp_file_finish(hd_tmp_file *t, const char *path, int rc, hd_error *e);

#endif
