# `hidream serve`'s web page in headless Chromium (Debian chromium, chromium-driver and
# python3-selenium, run by the system Python): tests/serve_browser.py. Screenshots are left in
# build/serve-screenshots/.
add_test(NAME serve_browser COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/serve_browser.py)
set_tests_properties(serve_browser PROPERTIES ENVIRONMENT "${HD_TEST_ENV}" TIMEOUT 600)
