/* The GPT-2 byte-to-unicode map used by byte-level BPE (Hugging Face "ByteLevel").
 *
 * Every byte is shown as one printable code point so that tokens are valid strings: the 188
 * printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves and
 * the other 68 bytes (0x00..0x20, 0x7F..0xA0, 0xAD), in increasing order, become U+0100..U+0143.
 * The vocabulary in tokenizer.json is written in this alphabet; we convert it back to raw bytes
 * at load time so that encoding works on the bytes directly. */
#ifndef HD_TEXT_BYTELEVEL_H
#define HD_TEXT_BYTELEVEL_H

#include <stdint.h>

static inline int hd_bytelevel_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* The code point that represents byte b. */
static inline uint32_t hd_bytelevel_char(unsigned b) {
    if (hd_bytelevel_is_printable(b)) return b;
    if (b <= 0x20) return 0x100 + b;              /* 33 control/space bytes */
    if (b >= 0x7F && b <= 0xA0) return 0x121 + (b - 0x7F); /* 34 bytes */
    return 0x143;                                 /* 0xAD, soft hyphen */
}

/* The byte that code point cp represents, or -1 when cp is outside the alphabet. */
static inline int hd_bytelevel_byte(uint32_t cp) {
    if (cp < 0x100) return hd_bytelevel_is_printable(cp) ? (int)cp : -1;
    if (cp <= 0x120) return (int)(cp - 0x100);
    if (cp <= 0x142) return (int)(0x7F + (cp - 0x121));
    if (cp == 0x143) return 0xAD;
    return -1;
}

#endif
