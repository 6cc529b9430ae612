/* libFuzzer target: arbitrary bytes as config.json and as tokenizer.json. Neither parser may
 * crash or leak; an accepted config must satisfy the invariants the model code relies on. */
#include <stdint.h>
#include <stdlib.h>

#include "io/config.h"
#include "model/inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hd_config cfg;
    hd_error e = {0};
    if (hd_config_parse_json(&cfg, (const char *)data, size, "fuzz", &e) == 0) {
        const hd_text_config *t = &cfg.text;
        if (t->head_dim % 2 || t->num_heads % t->num_kv_heads ||
            2 * (t->mrope_section[0] + t->mrope_section[1] + t->mrope_section[2]) != t->head_dim)
            abort();
        if (cfg.ids.image_pad < 0 || cfg.ids.image_pad >= t->vocab_size) abort();
        /* derived shapes and counts must not overflow (UBSan would flag it) */
        hd_param_counts pc;
        hd_inventory_param_counts(&cfg, &pc);
        if (pc.total <= 0) abort();
    }
    hd_token_ids ids;
    hd_config_parse_tokenizer_ids(&ids, (const char *)data, size, "fuzz", &e);
    return 0;
}
