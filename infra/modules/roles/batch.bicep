// Azure Batch Data Contributor on the Batch account: manage pools and jobs, not the account itself.
// Its Microsoft.Batch/batchAccounts/pools/* also covers pools/write through the management plane, the
// only way to create a pool with the pool identity; it is the least built-in Batch role that does
// (Azure Batch Job Submitter only reads pools; Azure Batch Account Contributor can also change the account).
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/compute#azure-batch-data-contributor
param batchAccountName string
param principalId string

resource account 'Microsoft.Batch/batchAccounts@2024-07-01' existing = {
  name: batchAccountName
}

resource batchData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, '6aaa78f1-f7de-44ca-8722-c64a23943cae')
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '6aaa78f1-f7de-44ca-8722-c64a23943cae')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = 'https://${account.properties.accountEndpoint}'
