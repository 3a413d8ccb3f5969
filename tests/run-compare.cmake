# Runs PROGRAM and fails unless its standard output is exactly EXPECTED's
# contents and it exits 0.  cmake -DPROGRAM=... -DEXPECTED=... -P run-compare.cmake
execute_process(COMMAND ${PROGRAM} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
file(READ ${EXPECTED} want)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${rc}")
endif()
if(NOT out STREQUAL want)
  message(FATAL_ERROR "${PROGRAM} printed:\n${out}\ninstead of:\n${want}")
endif()
