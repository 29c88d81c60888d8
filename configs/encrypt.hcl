# Gossip encryption key shared by every agent of the dev cluster (servers and clients load
# this file). It was made with `consulpy keygen` and is PUBLIC: it sits in this repository.
# Replace it with your own before you run anything that is not a throwaway dev cluster:
#
#   consulpy keygen          # prints a new base64 key; paste it below
#
# Every agent must have the same key. A running cluster changes keys with
# `consulpy keyring -install/-use/-remove` (see docs/gossip.md); editing this file then
# only matters for agents started with an empty data_dir.
encrypt = "ViMSLrNHAZesBYcLnhMDxOdV+MJ/ac6aiIEY/XtcuNc="
