# CLI-level tokenizer checks: the golden case files with the real Qwen3 tokenizer.
add_test(NAME tokenizer_golden_cases
         COMMAND hidream_cli check-tokenizer
                 --tokenizer ${HIDREAM_SHARED_DIR}/data/qwen3-tokenizer
                 ${HIDREAM_SHARED_DIR}/golden/tokenizer/cases.jsonl)
add_test(NAME tokenizer_golden_chat_template
         COMMAND hidream_cli check-tokenizer
                 --tokenizer ${HIDREAM_SHARED_DIR}/data/qwen3-tokenizer
                 ${HIDREAM_SHARED_DIR}/golden/tokenizer/chat_template.jsonl)
set_tests_properties(tokenizer_golden_cases tokenizer_golden_chat_template
                     PROPERTIES ENVIRONMENT "${HD_TEST_ENV}" TIMEOUT 300)
