"""The Android Management API: Google's Android Device Policy as a second management stack.

models: the connection settings (one row) and the work owed to Google (tasks, retried);
client: the one way the portal talks to Google (google-api-python-client, google-auth), with
Google's errors turned into plain sentences and its retry and quota answers honoured;
calls: the API calls the portal makes; tasks: the deletions owed to Google, retried."""
import warnings

# google-api-core warns, on import, that a future release will drop this Python: a notice for
# us (README, Dependencies), not for every admin running a `flask` command.
warnings.filterwarnings("ignore", message="You are using a Python version",
                        category=FutureWarning)
