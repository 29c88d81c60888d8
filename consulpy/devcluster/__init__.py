"""Dev clusters: the topology shared by docker-compose.yml and `consulpy dev-cluster`, and the
docker-free twin that runs it as local processes."""

from consulpy.devcluster.cluster import DEFAULT_DATA_DIR, DevCluster, DevClusterError

__all__ = ["DEFAULT_DATA_DIR", "DevCluster", "DevClusterError"]
