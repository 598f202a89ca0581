import type { INodeProperties } from 'n8n-workflow';
import { identifierFields, OMIT_EMPTY, show, unwrap } from '../shared/descriptions';

const GEN = 'generation';

export const generationOperations: INodeProperties = {
	displayName: 'Operation',
	name: 'operation',
	type: 'options',
	noDataExpression: true,
	displayOptions: { show: { resource: [GEN] } },
	default: 'prompt',
	options: [
		{
			name: 'Prompt',
			value: 'prompt',
			action: 'Generate content with instructions',
			description:
				'Multi-step generation with named outputs, channel rules and guidelines, using the record\'s memory',
			routing: { request: { method: 'POST', url: '/prompt' }, ...unwrap() },
		},
		{
			name: 'Run Agent',
			value: 'runAgent',
			action: 'Run a saved agent',
			description: 'Run a saved prompt action with its variables filled in',
			routing: {
				request: { method: 'POST', url: '=/agents/{{ encodeURIComponent($parameter.agentId) }}/run' },
				...unwrap(),
			},
		},
	],
};

export const generationFields: INodeProperties[] = [
	{
		displayName: 'Instructions',
		name: 'instructions',
		type: 'fixedCollection',
		typeOptions: { multipleValues: true, sortable: true },
		placeholder: 'Add Instruction',
		required: true,
		default: { instruction: [{ prompt: '' }] },
		description: 'Steps run in order; each may read the previous answers',
		displayOptions: show(GEN, ['prompt']),
		options: [
			{
				displayName: 'Instruction',
				name: 'instruction',
				values: [
					{
						displayName: 'Prompt',
						name: 'prompt',
						type: 'string',
						typeOptions: { rows: 3 },
						default: '',
					},
				],
			},
		],
		routing: {
			send: {
				type: 'body',
				property: 'instructions',
				value: '={{ ($value.instruction || []).filter(i => i.prompt).map(i => ({ prompt: i.prompt })) }}',
			},
		},
	},
	{
		displayName: 'Outputs',
		name: 'outputs',
		type: 'fixedCollection',
		typeOptions: { multipleValues: true },
		placeholder: 'Add Output',
		default: {},
		description: 'Named fields the answer must fill (e.g. subject, body_html)',
		displayOptions: show(GEN, ['prompt']),
		options: [
			{
				displayName: 'Output',
				name: 'output',
				values: [
					{
						displayName: 'Name',
						name: 'name',
						type: 'string',
						default: '',
						placeholder: 'subject',
					},
					{
						displayName: 'Description',
						name: 'description',
						type: 'string',
						default: '',
					},
				],
			},
		],
		routing: {
			send: {
				type: 'body',
				property: 'outputs',
				value: '={{ ($value.output || []).filter(o => o.name).map(o => ({ name: o.name, description: o.description || "" })) }}',
			},
		},
	},
	{
		displayName: 'Channel',
		name: 'channel',
		type: 'options',
		default: '',
		options: [
			{ name: 'Any', value: '' },
			{ name: 'Email', value: 'email' },
			{ name: 'In-App', value: 'in_app' },
			{ name: 'Push', value: 'push' },
			{ name: 'Slack', value: 'slack' },
			{ name: 'SMS', value: 'sms' },
		],
		description: 'Apply the channel\'s rules and required outputs',
		displayOptions: show(GEN, ['prompt']),
		routing: { send: { type: 'body', property: 'channel', value: OMIT_EMPTY } },
	},
	{
		displayName: 'Context',
		name: 'context',
		type: 'string',
		typeOptions: { rows: 3 },
		default: '',
		description: 'Extra context for the model (e.g. a Digest\'s compiledContext)',
		displayOptions: show(GEN, ['prompt']),
		routing: { send: { type: 'body', property: 'context', value: OMIT_EMPTY } },
	},
	...identifierFields(GEN, ['prompt']),
	{
		displayName: 'Memorize Outputs',
		name: 'memorizeBack',
		type: 'boolean',
		default: false,
		description: 'Whether to store what was generated as a memory of the record',
		displayOptions: show(GEN, ['prompt']),
		routing: {
			send: {
				type: 'body',
				property: 'memorize',
				value:
					'={{ $value ? Object.fromEntries(Object.entries({ type: $parameter.entityType, email: $parameter.email, websiteUrl: $parameter.otherIdentifiers.websiteUrl, recordId: $parameter.otherIdentifiers.recordId, customKeyName: $parameter.otherIdentifiers.customKeyName, customKeyValue: $parameter.otherIdentifiers.customKeyValue }).filter(([k, v]) => v)) : undefined }}',
			},
		},
	},
	{
		displayName: 'Agent Name or ID',
		name: 'agentId',
		type: 'options',
		typeOptions: { loadOptionsMethod: 'getAgents' },
		required: true,
		default: '',
		description:
			'Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>',
		displayOptions: show(GEN, ['runAgent']),
	},
	{
		displayName: 'Input',
		name: 'input',
		type: 'string',
		typeOptions: { rows: 3 },
		default: '',
		description: 'The agent\'s {{input}} variable',
		displayOptions: show(GEN, ['runAgent']),
		routing: { send: { type: 'body', property: 'input', value: OMIT_EMPTY } },
	},
	{
		displayName: 'Variables',
		name: 'variables',
		type: 'fixedCollection',
		typeOptions: { multipleValues: true },
		placeholder: 'Add Variable',
		default: {},
		displayOptions: show(GEN, ['runAgent']),
		options: [
			{
				displayName: 'Variable',
				name: 'variable',
				values: [
					{ displayName: 'Name', name: 'name', type: 'string', default: '' },
					{ displayName: 'Value', name: 'value', type: 'string', default: '' },
				],
			},
		],
		routing: {
			send: {
				type: 'body',
				property: 'variables',
				value: '={{ Object.fromEntries(($value.variable || []).filter(v => v.name).map(v => [v.name, v.value])) }}',
			},
		},
	},
];
