# gguf-py parity of the GGML block formats (src/core/quant.c): tests/quant_parity.py writes
# random blocks and rows with the `gguf` package's reference (de)quantizer and runs
# `test_quant --parity DIR`, which must agree bit for bit. The package is a pinned test-only
# PyPI dependency in the source root's build-venv/ (scripts/deps.sh --test); without it the
# test fails (it does not skip).
add_test(NAME quant_gguf_py_parity
         COMMAND ${CMAKE_SOURCE_DIR}/build-venv/bin/python ${CMAKE_SOURCE_DIR}/tests/quant_parity.py
                 $<TARGET_FILE:test_quant>)
set_tests_properties(quant_gguf_py_parity PROPERTIES ENVIRONMENT "${HD_TEST_ENV}" TIMEOUT 300)
