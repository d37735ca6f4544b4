"""claims-validator: validates professional medical claims consumed from Apache Kafka."""

__all__: list[str] = []
