"""A faithful local AWS IoT Greengrass v2 core: IPC server, recipe lifecycle, local deployments."""
