# `hidream serve`'s web page in headless Chromium (Debian chromium, chromium-driver and
# python3-selenium, run by the system Python): tests/serve_browser.py. Screenshots are left in
# build/serve-screenshots/.
add_test(NAME serve_browser COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/serve_browser.py)
set_tests_properties(serve_browser PROPERTIES ENVIRONMENT "${HD_TEST_ENV}" TIMEOUT 600)

# Real third-party clients against `hidream serve`: the official `openai` Python client
# (generate, same/different seeds, edit with one and two pictures, a wrong API key) and the
# AUTOMATIC1111 client `webuiapi` (txt2img). Test-only PyPI packages, pinned, in the source
# root's build-venv/ (scripts/deps.sh), shared by every build directory (build/, build-asan/).
add_test(NAME serve_openai_and_a1111_clients
         COMMAND ${CMAKE_SOURCE_DIR}/build-venv/bin/python ${CMAKE_SOURCE_DIR}/tests/serve_clients.py)
set_tests_properties(serve_openai_and_a1111_clients PROPERTIES ENVIRONMENT "${HD_TEST_ENV}" TIMEOUT 600)
