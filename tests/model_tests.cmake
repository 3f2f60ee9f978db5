# SPIN model of the channel's wait/wake protocol (model/channel.pml,
# docs/model.md). Fails with a clear message when `spin` is missing:
# scripts/deps.sh installs it.
add_test(NAME model_channel_protocol
         COMMAND bash ${PROJECT_SOURCE_DIR}/model/run.sh)
set_tests_properties(model_channel_protocol PROPERTIES LABELS model TIMEOUT 120)
