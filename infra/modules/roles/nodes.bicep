// The pool identity's roles on the storage account: what a Batch node needs and no more. Anything on a
// node (a TES task's pod too) can ask the instance metadata service for this identity's tokens, so it
// reads only the three artifact containers and writes only the per-pool cluster containers (k8s-*).
// Built-in role ids from "Azure built-in roles":
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage
param storageAccountName string
param principalId string

@description('Containers nodes read: the node scripts, the Kubernetes manifests and the TES task documents.')
param readContainers array

// The cluster containers are named per pool at run time (k8s-<pool id>, batchk8s/batch/pools.py), so they
// cannot be scopes here: the write role is on the account with a condition confining every blob data
// action it grants to containers whose name starts with k8s-.
var clusterPrefix = 'k8s-'
var clusterOnly = '''
(
 (
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})
  AND !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'})
  AND !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'})
  AND !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'})
  AND !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action'})
 )
 OR
 (
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringStartsWith 'k8s-'
 )
)
'''

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource artifacts 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for container in readContainers: {
  parent: blobService
  name: container
}]

// Storage Blob Data Reader on each artifact container (not the account): the bootstrap script Batch
// fetches with the identity, the TESK manifests and sample TES tasks workflow tasks download.
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage#storage-blob-data-reader
resource artifactReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (container, i) in readContainers: {
  name: guid(artifacts[i].id, principalId, '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1')
  scope: artifacts[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

// Storage Blob Data Contributor, conditioned to the cluster containers: the control-plane election
// (create control-plane.lock), the join command and the cluster record. Conditions bind data actions
// only; the role's container actions through Azure Resource Manager stay account-wide (docs/least-privilege.md).
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage#storage-blob-data-contributor
resource clusterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, 'ba92f5b4-2d11-453d-a403-e96b0029c9fe', clusterPrefix)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
    principalId: principalId
    principalType: 'ServicePrincipal'
    conditionVersion: '2.0'
    condition: clusterOnly
    description: 'batchk8s pool nodes: blob data in the k8s-* cluster containers only'
  }
}
