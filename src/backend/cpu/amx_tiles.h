/* The AMX tile shapes (the per-thread TILECFG register) of the kernels in this folder: all eight
 * tiles 16 rows of 64 bytes. Each thread sets them once, before its first tile instruction.
 * Only for files compiled with the AMX flags (*_amx.c). */
#ifndef HD_BACKEND_CPU_AMX_TILES_H
#define HD_BACKEND_CPU_AMX_TILES_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

extern _Thread_local int hd_amx_tiles_configured; /* gemm_amx.c */

typedef struct hd_amx_tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} hd_amx_tile_config;

/* GCC's _tile_loadd and _tile_loadconfig are asm statements that do not declare the memory
 * they read: a buffer written by C code just before must be flushed to memory first. */
#define HD_AMX_READS_MEMORY() __asm__ volatile("" ::: "memory")

static inline void hd_amx_tiles_ready(void) {
    if (hd_amx_tiles_configured) return;
    hd_amx_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    HD_AMX_READS_MEMORY(); /* else GCC drops the stores to cfg as dead (tiles of 0 rows: #UD) */
    _tile_loadconfig(&cfg);
    hd_amx_tiles_configured = 1;
}

#endif
