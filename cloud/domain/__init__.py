"""The domain: alerts, cases, devices, operators. No FastAPI, no paho here:
adapters (cloud/mqtt, cloud/api) call in and pass the ports they implement."""
