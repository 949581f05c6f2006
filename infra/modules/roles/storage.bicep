// Roles on the storage account. Built-in role ids from "Azure built-in roles":
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage
param storageAccountName string
param principalId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// Storage Blob Data Contributor: the host's blob locks and timer state, the deployment package,
// the artifact containers and the schedule state (read, write, delete, lease; no ACL ownership).
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage#storage-blob-data-contributor
resource blobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Delegator: a user delegation key, to sign the read-only SAS URLs Batch nodes use.
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage#storage-blob-delegator
resource delegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a')
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
