# Pillow parity of the image code: tests/pillow_parity.py drives tools/hd_resize.c and compares
# every result with Pillow byte for byte. Needs Debian's python3 with python3-pil; without it the
# test fails (it does not skip).
if(EXISTS /usr/bin/python3)
  set(HD_PARITY_PYTHON /usr/bin/python3)
else()
  find_program(HD_PARITY_PYTHON python3)
endif()
add_test(NAME image_pillow_parity
         COMMAND ${HD_PARITY_PYTHON} ${CMAKE_SOURCE_DIR}/tests/pillow_parity.py
                 $<TARGET_FILE:hd_resize>)
set_tests_properties(image_pillow_parity PROPERTIES ENVIRONMENT "${HD_TEST_ENV}" TIMEOUT 900)
