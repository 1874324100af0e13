"""What the deployment is built from: the machine's packages, the Docker engine, the subscriber's image
(cross-built for another CPU) and the publisher's wheels. Imports nothing of the other stages."""
