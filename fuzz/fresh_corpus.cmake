# cmake -DSEEDS=dir -DWORK=dir -P fresh_corpus.cmake: WORK becomes a fresh copy of SEEDS.
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
file(COPY "${SEEDS}/" DESTINATION "${WORK}")
