"""What the app's start-up does for the process while it serves."""

import gc

from tests.api.conftest import make_client


def test_what_start_up_made_is_out_of_the_collector_s_way_while_the_app_serves():
    gc.unfreeze()
    with make_client() as client:
        assert gc.get_freeze_count() > 0
        assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() == 0
