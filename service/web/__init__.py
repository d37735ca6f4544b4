"""The front door for people: the HTTP API (`/v1/*`) and the what-if page (`/`).

`service.web.api.create_api()` builds the FastAPI app; the Kafka service mounts it on its own
HTTP port beside /metrics and the health endpoints, and `claims-validator web` serves it alone
(`service.web.standalone`), without Kafka.
"""
