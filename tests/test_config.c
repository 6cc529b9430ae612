/* config.json parsing and validation, special-token lookup in tokenizer.json, model directory
 * loading, and parameter counts derived from a config. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/config.h"
#include "model/inventory.h"
#include "testutil.h"

/* A complete small config; tests delete or change one field at a time. */
static const char base_config[] =
    "{\"architectures\":[\"Qwen3VLForConditionalGeneration\"],\"model_type\":\"qwen3_vl\","
    "\"image_token_id\":60,\"video_token_id\":61,\"vision_start_token_id\":62,"
    "\"vision_end_token_id\":63,\"tie_word_embeddings\":false,"
    "\"text_config\":{\"vocab_size\":70,\"hidden_size\":16,\"intermediate_size\":24,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":8,"
    "\"rms_norm_eps\":1e-5,\"rope_theta\":12345.0,\"hidden_act\":\"silu\","
    "\"attention_bias\":false,"
    "\"rope_scaling\":{\"rope_type\":\"default\",\"mrope_section\":[2,1,1],"
    "\"mrope_interleaved\":true,\"rope_theta\":999.0}},"
    "\"vision_config\":{\"depth\":3,\"hidden_size\":12,\"num_heads\":2,\"intermediate_size\":20,"
    "\"patch_size\":4,\"temporal_patch_size\":2,\"spatial_merge_size\":2,\"in_channels\":3,"
    "\"out_hidden_size\":16,\"num_position_embeddings\":9,\"deepstack_visual_indexes\":[0,2],"
    "\"hidden_act\":\"gelu_pytorch_tanh\"}}";

/* Applies edit(root) to base_config and parses the result. */
static int parse_edited(void (*edit)(json_t *root), hd_config *cfg, hd_error *e) {
    json_t *root = json_loads(base_config, 0, NULL);
    if (edit) edit(root);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    int rc = hd_config_parse_json(cfg, text, strlen(text), "cfg.json", e);
    free(text);
    return rc;
}

static json_t *tc(json_t *root) { return json_object_get(root, "text_config"); }
static json_t *vc(json_t *root) { return json_object_get(root, "vision_config"); }
static json_t *rs(json_t *root) { return json_object_get(tc(root), "rope_scaling"); }

static void test_base_config_parses_with_exact_values(void) {
    hd_config c;
    hd_error e = {0};
    CHECKF(parse_edited(NULL, &c, &e) == 0, "%s", e.msg);
    CHECK(!strcmp(c.model_type, "qwen3_vl"));
    CHECK(c.text.vocab_size == 70 && c.text.hidden_size == 16 && c.text.intermediate_size == 24);
    CHECK(c.text.num_layers == 2 && c.text.num_heads == 4 && c.text.num_kv_heads == 2);
    CHECK(c.text.head_dim == 8 && c.text.rms_norm_eps == 1e-5);
    CHECK(c.text.rope_theta == 12345.0); /* text_config wins over rope_scaling */
    CHECK(c.text.mrope_section[0] == 2 && c.text.mrope_section[1] == 1 &&
          c.text.mrope_section[2] == 1 && c.text.mrope_interleaved == 1);
    CHECK(c.vision.present && c.vision.depth == 3 && c.vision.hidden_size == 12);
    CHECK(c.vision.num_heads == 2 && c.vision.intermediate_size == 20 && c.vision.patch_size == 4);
    CHECK(c.vision.temporal_patch_size == 2 && c.vision.spatial_merge_size == 2);
    CHECK(c.vision.in_channels == 3 && c.vision.out_hidden_size == 16);
    CHECK(c.vision.num_position_embeddings == 9 && c.vision.n_deepstack == 2);
    CHECK(c.vision.deepstack_indexes[0] == 0 && c.vision.deepstack_indexes[1] == 2);
    CHECK(!strcmp(c.vision.hidden_act, "gelu_pytorch_tanh"));
    CHECK(c.ids.image_pad == 60 && c.ids.video_pad == 61 && c.ids.vision_start == 62 &&
          c.ids.vision_end == 63);
    CHECK(c.ids.tms == -1 && c.ids.boi == -1); /* only tokenizer.json gives these */
}

static void drop_text_theta(json_t *r) { json_object_del(tc(r), "rope_theta"); }
static void drop_all_but_top_theta(json_t *r) {
    json_object_del(tc(r), "rope_theta");
    json_object_del(rs(r), "rope_theta");
    json_object_set_new(r, "rope_theta", json_real(777.0));
}
static void drop_every_theta(json_t *r) {
    json_object_del(tc(r), "rope_theta");
    json_object_del(rs(r), "rope_theta");
}
static void no_interleave_flag(json_t *r) { json_object_del(rs(r), "mrope_interleaved"); }
static void no_vision(json_t *r) { json_object_del(r, "vision_config"); }
static void rope_parameters_v5(json_t *r) {
    json_t *p = json_deep_copy(rs(r));
    json_object_del(tc(r), "rope_scaling");
    json_object_set_new(tc(r), "rope_parameters", p);
}

static void test_rope_theta_location_precedence(void) {
    hd_config c;
    hd_error e = {0};
    CHECKF(parse_edited(drop_text_theta, &c, &e) == 0, "%s", e.msg);
    CHECK(c.text.rope_theta == 999.0);
    CHECKF(parse_edited(drop_all_but_top_theta, &c, &e) == 0, "%s", e.msg);
    CHECK(c.text.rope_theta == 777.0);
    CHECK(parse_edited(drop_every_theta, &c, &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "rope_theta: missing") != NULL);
}

static void test_optional_parts_take_their_defaults(void) {
    hd_config c;
    hd_error e = {0};
    CHECK(parse_edited(no_interleave_flag, &c, &e) == 0 && c.text.mrope_interleaved == 1);
    CHECK(parse_edited(no_vision, &c, &e) == 0 && c.vision.present == 0);
    CHECKF(parse_edited(rope_parameters_v5, &c, &e) == 0, "%s", e.msg);
    CHECK(c.text.mrope_section[0] == 2);
}

/* ---- broken variants --------------------------------------------------------------------------
 */

static const char *del_path; /* "text_config.head_dim", "image_token_id", ... */

static void delete_field(json_t *r) {
    const char *dot = strchr(del_path, '.');
    if (!dot) {
        json_object_del(r, del_path);
        return;
    }
    char parent[64];
    snprintf(parent, sizeof parent, "%.*s", (int)(dot - del_path), del_path);
    json_object_del(json_object_get(r, parent), dot + 1);
}

static void test_missing_required_field_is_named(void) {
    static const char *const fields[] = {"model_type",
                                         "image_token_id",
                                         "video_token_id",
                                         "vision_start_token_id",
                                         "vision_end_token_id",
                                         "text_config",
                                         "text_config.vocab_size",
                                         "text_config.hidden_size",
                                         "text_config.intermediate_size",
                                         "text_config.num_hidden_layers",
                                         "text_config.num_attention_heads",
                                         "text_config.num_key_value_heads",
                                         "text_config.head_dim",
                                         "text_config.rms_norm_eps",
                                         "text_config.rope_scaling",
                                         "vision_config.depth",
                                         "vision_config.hidden_size",
                                         "vision_config.num_heads",
                                         "vision_config.intermediate_size",
                                         "vision_config.patch_size",
                                         "vision_config.temporal_patch_size",
                                         "vision_config.spatial_merge_size",
                                         "vision_config.in_channels",
                                         "vision_config.out_hidden_size",
                                         "vision_config.num_position_embeddings",
                                         "vision_config.deepstack_visual_indexes"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        del_path = fields[i];
        hd_config c;
        hd_error e = {0};
        int rc = parse_edited(delete_field, &c, &e);
        CHECKF(rc == HD_EFORMAT, "deleting %s gave rc %d", fields[i], rc);
        char want[128];
        snprintf(want, sizeof want, "%s: missing", fields[i]);
        CHECKF(strstr(e.msg, want) && strstr(e.msg, "cfg.json"), "deleting %s: '%s'", fields[i],
               e.msg);
    }
}

static void bad_mrope_sum(json_t *r) {
    json_array_set_new(json_object_get(rs(r), "mrope_section"), 0, json_integer(3));
}
static void heads_not_divisible(json_t *r) {
    json_object_set_new(tc(r), "num_key_value_heads", json_integer(3));
}
static void odd_head_dim(json_t *r) {
    json_object_set_new(tc(r), "head_dim", json_integer(7));
    json_array_set_new(json_object_get(rs(r), "mrope_section"), 0, json_integer(1));
}
static void zero_layers(json_t *r) {
    json_object_set_new(tc(r), "num_hidden_layers", json_integer(0));
}
static void negative_hidden(json_t *r) {
    json_object_set_new(tc(r), "hidden_size", json_integer(-16));
}
static void real_hidden(json_t *r) { json_object_set_new(tc(r), "hidden_size", json_real(16.0)); }
static void huge_vocab(json_t *r) {
    json_object_set_new(tc(r), "vocab_size", json_integer(1LL << 40));
}
static void zero_eps(json_t *r) { json_object_set_new(tc(r), "rms_norm_eps", json_real(0)); }
static void vision_heads(json_t *r) { json_object_set_new(vc(r), "num_heads", json_integer(5)); }
static void deepstack_past_depth(json_t *r) {
    json_array_append_new(json_object_get(vc(r), "deepstack_visual_indexes"), json_integer(3));
}
static void token_outside_vocab(json_t *r) {
    json_object_set_new(r, "image_token_id", json_integer(70));
}
static void negative_token(json_t *r) {
    json_object_set_new(r, "vision_end_token_id", json_integer(-1));
}
static void wrong_model_type(json_t *r) {
    json_object_set_new(r, "model_type", json_string("llama"));
}
static void yarn_rope(json_t *r) { json_object_set_new(rs(r), "rope_type", json_string("yarn")); }
static void out_hidden_mismatch(json_t *r) {
    json_object_set_new(vc(r), "out_hidden_size", json_integer(32));
}
static void non_square_grid(json_t *r) {
    json_object_set_new(vc(r), "num_position_embeddings", json_integer(10));
}
static void short_mrope(json_t *r) {
    json_array_remove(json_object_get(rs(r), "mrope_section"), 2);
}
static void bias_on(json_t *r) { json_object_set_new(tc(r), "attention_bias", json_true()); }
static void text_not_object(json_t *r) { json_object_set_new(r, "text_config", json_integer(1)); }

static void test_invalid_values_are_rejected_naming_the_field(void) {
    static const struct {
        void (*edit)(json_t *);
        int rc;
        const char *want;
    } cases[] = {
        {bad_mrope_sum, HD_EFORMAT, "mrope_section sums to 5, but head_dim/2 = 4"},
        {heads_not_divisible, HD_EFORMAT,
         "num_attention_heads = 4 is not a multiple of num_key_value_heads = 3"},
        {odd_head_dim, HD_EFORMAT, "text_config.head_dim = 7 is not even"},
        {zero_layers, HD_EFORMAT, "text_config.num_hidden_layers = 0 is out of range"},
        {negative_hidden, HD_EFORMAT, "text_config.hidden_size = -16 is out of range"},
        {real_hidden, HD_EFORMAT, "text_config.hidden_size: not an integer"},
        {huge_vocab, HD_EFORMAT, "text_config.vocab_size = 1099511627776 is out of range"},
        {zero_eps, HD_EFORMAT, "text_config.rms_norm_eps = 0 must be positive"},
        {vision_heads, HD_EFORMAT, "vision_config.hidden_size = 12 does not split into 5 heads"},
        {deepstack_past_depth, HD_EFORMAT, "vision_config.deepstack_visual_indexes[2]"},
        {token_outside_vocab, HD_EFORMAT, "image_token_id = 70 is outside the vocabulary"},
        {negative_token, HD_EFORMAT, "vision_end_token_id = -1 is outside the vocabulary"},
        {wrong_model_type, HD_EUNSUPPORTED, "model_type = \"llama\""},
        {yarn_rope, HD_EUNSUPPORTED, "text_config.rope_scaling.rope_type"},
        {out_hidden_mismatch, HD_EFORMAT, "vision_config.out_hidden_size = 32 differs"},
        {non_square_grid, HD_EFORMAT, "num_position_embeddings = 10 is not a square"},
        {short_mrope, HD_EFORMAT, "mrope_section: not an array of 3 integers"},
        {bias_on, HD_EUNSUPPORTED, "text_config.attention_bias"},
        {text_not_object, HD_EFORMAT, "text_config: not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hd_config c;
        hd_error e = {0};
        int rc = parse_edited(cases[i].edit, &c, &e);
        CHECKF(rc == cases[i].rc, "case %zu: rc %d (%s)", i, rc, e.msg);
        CHECKF(strstr(e.msg, cases[i].want) && strstr(e.msg, "cfg.json"),
               "case %zu: '%s' lacks '%s'", i, e.msg, cases[i].want);
    }
}

static void test_malformed_json_is_rejected(void) {
    hd_config c;
    hd_error e = {0};
    CHECK(hd_config_parse_json(&c, "{\"model_type\":", 14, "cfg.json", &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "cfg.json: not valid JSON") != NULL);
    CHECK(hd_config_parse_json(&c, "[]", 2, "cfg.json", &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "not a JSON object") != NULL);
    CHECK(hd_config_parse_json(&c, "", 0, "cfg.json", &e) == HD_EFORMAT);
}

/* ---- tokenizer ids ------------------------------------------------------------------------------
 */

static const char tok_json[] =
    "{\"added_tokens\":[{\"id\":5,\"content\":\"<|endoftext|>\"},"
    "{\"id\":66,\"content\":\"<|tms_token|>\"},{\"id\":64,\"content\":\"<|boi_token|>\"},"
    "{\"id\":67,\"content\":\"<|im_start|>\"},{\"id\":68,\"content\":\"<|im_end|>\"},"
    "{\"id\":69,\"content\":\"<|tms_token|>x\"}],\"model\":{\"vocab\":{}}}";

static void test_special_tokens_are_found_by_content(void) {
    hd_token_ids ids = {0};
    hd_error e = {0};
    CHECKF(hd_config_parse_tokenizer_ids(&ids, tok_json, strlen(tok_json), "tok.json", &e) == 0,
           "%s", e.msg);
    CHECK(ids.tms == 66 && ids.boi == 64 && ids.im_start == 67 && ids.im_end == 68 &&
          ids.endoftext == 5);
}

static void test_missing_hidream_tokens_are_an_error_naming_tokenizer(void) {
    const char *no_tms = "{\"added_tokens\":[{\"id\":64,\"content\":\"<|boi_token|>\"}]}";
    const char *no_boi = "{\"added_tokens\":[{\"id\":64,\"content\":\"<|tms_token|>\"}]}";
    hd_token_ids ids;
    hd_error e = {0};
    CHECK(hd_config_parse_tokenizer_ids(&ids, no_tms, strlen(no_tms), "tok.json", &e) ==
          HD_EFORMAT);
    CHECK(strstr(e.msg, "tok.json") && strstr(e.msg, "<|tms_token|>"));
    CHECK(hd_config_parse_tokenizer_ids(&ids, no_boi, strlen(no_boi), "tok.json", &e) ==
          HD_EFORMAT);
    CHECK(strstr(e.msg, "tok.json") && strstr(e.msg, "<|boi_token|>"));
    const char *bad = "{\"added_tokens\":[{\"id\":\"x\",\"content\":\"<|tms_token|>\"}]}";
    CHECK(hd_config_parse_tokenizer_ids(&ids, bad, strlen(bad), "tok.json", &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "added_tokens[0]") != NULL);
    const char *twice = "{\"added_tokens\":[{\"id\":1,\"content\":\"<|tms_token|>\"},"
                        "{\"id\":2,\"content\":\"<|tms_token|>\"}]}";
    CHECK(hd_config_parse_tokenizer_ids(&ids, twice, strlen(twice), "tok.json", &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "appears twice") != NULL);
    CHECK(hd_config_parse_tokenizer_ids(&ids, "{}", 2, "tok.json", &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "added_tokens") != NULL);
}

/* ---- directories ---------------------------------------------------------------------------- */

static void write_dir(const char *dir, const char *config, const char *tok) {
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(hd_test_write_file(path, config, strlen(config)) == 0);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (tok) CHECK(hd_test_write_file(path, tok, strlen(tok)) == 0);
}

static void test_load_dir_combines_config_and_tokenizer(void) {
    char dir[512], sub[600];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/my-model", dir);
    CHECK(mkdir(sub, 0777) == 0);
    write_dir(sub, base_config, tok_json);
    hd_config c;
    hd_error e = {0};
    char with_slash[700];
    snprintf(with_slash, sizeof with_slash, "%s/", sub);
    CHECKF(hd_config_load_dir(&c, with_slash, &e) == 0, "%s", e.msg);
    CHECK(!strcmp(c.name, "my-model"));
    CHECK(c.ids.tms == 66 && c.ids.boi == 64 && c.ids.image_pad == 60);
    CHECK(c.text.hidden_size == 16);
}

static void test_load_dir_errors_name_the_file(void) {
    char dir[512];
    hd_test_tmpdir(dir, sizeof dir);
    hd_config c;
    hd_error e = {0};
    CHECK(hd_config_load_dir(&c, dir, &e) == HD_EIO);
    CHECK(strstr(e.msg, "config.json") != NULL);
    write_dir(dir, base_config, NULL);
    CHECK(hd_config_load_dir(&c, dir, &e) == HD_EIO);
    CHECK(strstr(e.msg, "tokenizer.json") != NULL);
    /* a HiDream token id beyond the config's vocabulary */
    const char *far = "{\"added_tokens\":[{\"id\":70,\"content\":\"<|tms_token|>\"},"
                      "{\"id\":64,\"content\":\"<|boi_token|>\"}]}";
    write_dir(dir, base_config, far);
    CHECK(hd_config_load_dir(&c, dir, &e) == HD_EFORMAT);
    CHECKF(strstr(e.msg, "tokenizer.json") && strstr(e.msg, "<|tms_token|> id = 70"), "%s", e.msg);
    const char *none = "{\"added_tokens\":[{\"id\":64,\"content\":\"<|boi_token|>\"}]}";
    write_dir(dir, base_config, none);
    CHECK(hd_config_load_dir(&c, dir, &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "tokenizer.json") && strstr(e.msg, "<|tms_token|>"));
}

/* The golden tiny model: values compared with the files read independently, so the test holds
 * for any golden set. */
static void test_golden_config_matches_its_files(void) {
    char dir[1024], path[1100];
    hd_test_shared(dir, sizeof dir, "golden/model-tiny");
    hd_config c;
    hd_error e = {0};
    CHECKF(hd_config_load_dir(&c, dir, &e) == 0, "%s", e.msg);
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *root = json_load_file(path, 0, NULL);
    CHECK(root != NULL);
    json_t *t = tc(root), *v = vc(root);
    CHECK(c.text.hidden_size == json_integer_value(json_object_get(t, "hidden_size")));
    CHECK(c.text.num_layers == json_integer_value(json_object_get(t, "num_hidden_layers")));
    CHECK(c.text.num_heads == json_integer_value(json_object_get(t, "num_attention_heads")));
    CHECK(c.text.num_kv_heads == json_integer_value(json_object_get(t, "num_key_value_heads")));
    CHECK(c.text.head_dim == json_integer_value(json_object_get(t, "head_dim")));
    CHECK(c.text.vocab_size == json_integer_value(json_object_get(t, "vocab_size")));
    CHECK(c.text.intermediate_size == json_integer_value(json_object_get(t, "intermediate_size")));
    CHECK(c.text.rms_norm_eps == json_number_value(json_object_get(t, "rms_norm_eps")));
    json_t *ms = json_object_get(json_object_get(t, "rope_scaling"), "mrope_section");
    for (int i = 0; i < 3; i++)
        CHECK(c.text.mrope_section[i] == json_integer_value(json_array_get(ms, (size_t)i)));
    CHECK(c.text.rope_theta > 0);
    CHECK(c.vision.present == (v != NULL));
    if (v) {
        CHECK(c.vision.depth == json_integer_value(json_object_get(v, "depth")));
        CHECK(c.vision.hidden_size == json_integer_value(json_object_get(v, "hidden_size")));
        CHECK(c.vision.n_deepstack ==
              (int)json_array_size(json_object_get(v, "deepstack_visual_indexes")));
    }
    CHECK(c.ids.image_pad == json_integer_value(json_object_get(root, "image_token_id")));
    CHECK(c.ids.vision_start == json_integer_value(json_object_get(root, "vision_start_token_id")));
    json_decref(root);

    /* special ids: scan added_tokens independently */
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    root = json_load_file(path, 0, NULL);
    int tms = -1, boi = -1, ims = -1;
    size_t i;
    json_t *tok;
    json_array_foreach(json_object_get(root, "added_tokens"), i, tok) {
        const char *s = json_string_value(json_object_get(tok, "content"));
        int id = (int)json_integer_value(json_object_get(tok, "id"));
        if (s && !strcmp(s, "<|tms_token|>")) tms = id;
        if (s && !strcmp(s, "<|boi_token|>")) boi = id;
        if (s && !strcmp(s, "<|im_start|>")) ims = id;
    }
    json_decref(root);
    CHECK(tms >= 0 && c.ids.tms == tms && c.ids.boi == boi && c.ids.im_start == ims);
}

/* ---- parameter counts ------------------------------------------------------------------------ */

/* The 8B model's config (spec 01 §2); spec 01 §4 states the resulting counts. */
static const char config_8b[] =
    "{\"model_type\":\"qwen3_vl\",\"image_token_id\":151655,\"video_token_id\":151656,"
    "\"vision_start_token_id\":151652,\"vision_end_token_id\":151653,"
    "\"text_config\":{\"vocab_size\":151936,\"hidden_size\":4096,\"intermediate_size\":12288,"
    "\"num_hidden_layers\":36,\"num_attention_heads\":32,\"num_key_value_heads\":8,"
    "\"head_dim\":128,\"rms_norm_eps\":1e-6,\"rope_theta\":5000000,"
    "\"rope_scaling\":{\"rope_type\":\"default\",\"mrope_section\":[24,20,20],"
    "\"mrope_interleaved\":true}},"
    "\"vision_config\":{\"depth\":27,\"hidden_size\":1152,\"num_heads\":16,"
    "\"intermediate_size\":4304,\"patch_size\":16,\"temporal_patch_size\":2,"
    "\"spatial_merge_size\":2,\"in_channels\":3,\"out_hidden_size\":4096,"
    "\"num_position_embeddings\":2304,\"deepstack_visual_indexes\":[8,16,24],"
    "\"hidden_act\":\"gelu_pytorch_tanh\"}}";

static void test_8b_parameter_counts_match_spec(void) {
    hd_config c;
    hd_error e = {0};
    CHECKF(hd_config_parse_json(&c, config_8b, strlen(config_8b), "8b", &e) == 0, "%s", e.msg);
    hd_param_counts pc;
    hd_inventory_param_counts(&c, &pc);
    CHECK(pc.part[HD_PART_TEXT] == 7568405504LL && pc.n_tensors[HD_PART_TEXT] == 398);
    CHECK(pc.part[HD_PART_HIDREAM] == 37764096LL && pc.n_tensors[HD_PART_HIDREAM] == 9);
    CHECK(pc.part[HD_PART_VISION] == 576388336LL && pc.n_tensors[HD_PART_VISION] == 351);
    CHECK(pc.lm_head == 622329856LL);
    CHECK(pc.total + pc.lm_head == 8804887792LL);
}

/* ---- the "hidream" object (generation settings) --------------------------------------------- */

/* base_config with "hidream": <json> (NULL = no object). */
static int parse_with_hidream(const char *json, hd_config *cfg, hd_error *e) {
    json_t *root = json_loads(base_config, 0, NULL);
    if (json) {
        json_error_t jerr;
        json_t *h = json_loads(json, JSON_DECODE_ANY, &jerr);
        CHECKF(h != NULL, "test JSON '%s': %s", json, jerr.text);
        json_object_set_new(root, "hidream", h);
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    int rc = hd_config_parse_json(cfg, text, strlen(text), "cfg.json", e);
    free(text);
    return rc;
}

static void check_release_generation(const hd_gen_config *g, int stated) {
    CHECK(g->stated == stated);
    CHECK(g->patch_size == 32 && g->noise_scale == 8.0);
    CHECK(g->native_w == 0 && g->native_h == 0 && g->n_resolutions == 0);
    CHECK(g->scheduler[0] == 0 && g->steps == 0 && g->guidance < 0 && g->shift < 0);
}

static void test_generation_settings_default_to_the_release(void) {
    hd_config c;
    hd_error e = {0};
    CHECKF(parse_with_hidream(NULL, &c, &e) == 0, "%s", e.msg);
    check_release_generation(&c.gen, 0);
    CHECKF(parse_with_hidream("{}", &c, &e) == 0, "%s", e.msg);
    check_release_generation(&c.gen, 1);
    CHECKF(parse_with_hidream("null", &c, &e) == 0, "%s", e.msg);
    check_release_generation(&c.gen, 0);
}

static void test_every_generation_field_is_read(void) {
    hd_config c;
    hd_error e = {0};
    CHECKF(parse_with_hidream("{\"patch_size\": 8, \"noise_scale\": 1.5, \"native_size\": [64, 48],"
                              " \"resolutions\": [[96, 48], [64, 48], [48, 64]],"
                              " \"scheduler\": \"flow_match\", \"steps\": 20, \"guidance\": 0,"
                              " \"shift\": 2.5}",
                              &c, &e) == 0,
           "%s", e.msg);
    const hd_gen_config *g = &c.gen;
    CHECK(g->stated == 1 && g->patch_size == 8 && g->noise_scale == 1.5);
    CHECK(g->native_w == 64 && g->native_h == 48);
    CHECK(g->n_resolutions == 3 && g->resolutions[0][0] == 96 && g->resolutions[0][1] == 48 &&
          g->resolutions[2][0] == 48 && g->resolutions[2][1] == 64);
    CHECK(!strcmp(g->scheduler, "flow_match") && g->steps == 20);
    CHECK(g->guidance == 0.0 && g->shift == 2.5);
    /* integers are numbers too; each scheduler name is accepted */
    CHECKF(parse_with_hidream("{\"noise_scale\": 2, \"scheduler\": \"flash\"}", &c, &e) == 0,
           "%s", e.msg);
    CHECK(c.gen.noise_scale == 2.0 && !strcmp(c.gen.scheduler, "flash") && c.gen.patch_size == 32);
    CHECKF(parse_with_hidream("{\"scheduler\": \"unipc\", \"patch_size\": 1,"
                              " \"native_size\": [3, 5]}",
                              &c, &e) == 0,
           "%s", e.msg);
    CHECK(c.gen.patch_size == 1 && c.gen.native_w == 3 && c.gen.native_h == 5);
}

static void test_invalid_generation_fields_are_named(void) {
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"[]", "hidream: not an object"},
        {"{\"patch\": 8}", "hidream.patch: unknown field"},
        {"{\"patch_size\": 0}", "hidream.patch_size = 0 is out of range [1, 64]"},
        {"{\"patch_size\": 65}", "hidream.patch_size = 65 is out of range"},
        {"{\"patch_size\": 8.5}", "hidream.patch_size: not an integer"},
        {"{\"noise_scale\": 0}", "hidream.noise_scale = 0 must be >"},
        {"{\"noise_scale\": -1}", "hidream.noise_scale = -1"},
        {"{\"noise_scale\": \"8\"}", "hidream.noise_scale: not a number"},
        {"{\"patch_size\": 8, \"native_size\": [60, 64]}",
         "hidream.native_size: width 60 is not a positive multiple of the patch size 8"},
        {"{\"native_size\": [64]}", "hidream.native_size: not [width, height] integers"},
        {"{\"native_size\": [32, 16384]}", "hidream.native_size: height 16384"},
        {"{\"native_size\": [0, 32]}", "hidream.native_size: width 0"},
        {"{\"resolutions\": []}", "hidream.resolutions: not an array of 1 to 32"},
        {"{\"resolutions\": [[48, 64]]}", "hidream.resolutions[0]: width 48 is not a positive "
                                          "multiple of the patch size 32"},
        {"{\"resolutions\": [[32, 32], \"64x64\"]}", "hidream.resolutions[1]: not [width, height]"},
        {"{\"native_size\": [64, 64], \"resolutions\": [[32, 32]]}",
         "hidream.native_size 64x64 is not one of hidream.resolutions"},
        {"{\"scheduler\": \"ddim\"}", "hidream.scheduler = \"ddim\": not unipc, flow_match or flash"},
        {"{\"scheduler\": 3}", "hidream.scheduler: not a string"},
        {"{\"steps\": 0}", "hidream.steps = 0 is out of range [1, 1000]"},
        {"{\"steps\": 1001}", "hidream.steps = 1001 is out of range"},
        {"{\"guidance\": -1}", "hidream.guidance = -1 must be >= 0"},
        {"{\"guidance\": true}", "hidream.guidance: not a number"},
        {"{\"shift\": 0}", "hidream.shift = 0 must be > 0"},
        {"{\"shift\": 1e9}", "hidream.shift = 1e+09 must be > 0 and at most 10000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hd_config c;
        hd_error e = {0};
        int rc = parse_with_hidream(cases[i].json, &c, &e);
        CHECKF(rc == HD_EFORMAT, "case %zu (%s): rc %d", i, cases[i].json, rc);
        CHECKF(strstr(e.msg, cases[i].want) && strstr(e.msg, "cfg.json"),
               "case %zu: '%s' lacks '%s'", i, e.msg, cases[i].want);
    }
}

/* The HiDream additions' shapes follow the patch size: 3·p² values per patch row. */
static void test_inventory_follows_the_patch_size(void) {
    hd_config c;
    hd_error e = {0};
    CHECKF(parse_with_hidream("{\"patch_size\": 8}", &c, &e) == 0, "%s", e.msg);
    hd_param_counts a, b;
    hd_inventory_param_counts(&c, &a);
    CHECKF(parse_with_hidream(NULL, &c, &e) == 0, "%s", e.msg);
    hd_inventory_param_counts(&c, &b);
    /* proj1 [D/4, 3p²], final_layer2 weight [3p², D] and bias [3p²]; D = 16 */
    int64_t d8 = 4 * 192 + 192 * 16 + 192, d32 = 4 * 3072 + 3072 * 16 + 3072;
    CHECK(b.part[HD_PART_HIDREAM] - a.part[HD_PART_HIDREAM] == d32 - d8);
    CHECK(a.part[HD_PART_TEXT] == b.part[HD_PART_TEXT]);
}

int main(void) {
    RUN_TEST(test_base_config_parses_with_exact_values);
    RUN_TEST(test_rope_theta_location_precedence);
    RUN_TEST(test_optional_parts_take_their_defaults);
    RUN_TEST(test_missing_required_field_is_named);
    RUN_TEST(test_invalid_values_are_rejected_naming_the_field);
    RUN_TEST(test_malformed_json_is_rejected);
    RUN_TEST(test_special_tokens_are_found_by_content);
    RUN_TEST(test_missing_hidream_tokens_are_an_error_naming_tokenizer);
    RUN_TEST(test_load_dir_combines_config_and_tokenizer);
    RUN_TEST(test_load_dir_errors_name_the_file);
    RUN_TEST(test_golden_config_matches_its_files);
    RUN_TEST(test_8b_parameter_counts_match_spec);
    RUN_TEST(test_generation_settings_default_to_the_release);
    RUN_TEST(test_every_generation_field_is_read);
    RUN_TEST(test_invalid_generation_fields_are_named);
    RUN_TEST(test_inventory_follows_the_patch_size);
    return hd_test_finish();
}
